"""The gateway's web side for delegated mode: the sign-in page (``/.signin/``) and the app
passwords people use in CalDAV clients (:mod:`.app_passwords`, checked by
:mod:`radicale_graph.auth`)."""

from http import client as _http


def answer(status: int, headers: dict[str, str], body: bytes) -> tuple[str, list, list]:
    """Radicale's intermediate response ``(status line, header list, [body])`` for a page
    the gateway answers itself; ``Content-Length`` is the body's unless ``headers`` states
    one (a 304 states the 200's, RFC 9110 section 8.6)."""
    headers = {"Content-Length": str(len(body)), **headers}
    return f"{status} {_http.responses.get(status, 'Error')}", list(headers.items()), [body]
