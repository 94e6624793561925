"""The gateway's web side for delegated mode: the sign-in page (``/.signin/``) and the app
passwords people use in CalDAV clients (:mod:`.app_passwords`, checked by
:mod:`radicale_graph.auth`)."""
