"""Radicale auth plugin ``[auth] type = radicale_graph.auth``: app passwords, then htpasswd.

A login is a person's UPN. In ``[storage] mode = delegated`` or ``both`` an app password the
person created on the sign-in page (:mod:`radicale_graph.web.app_passwords`) is accepted; a
revoked one is refused at the next request (no login cache: this type is not one of Radicale's
``CACHE_LOGIN_TYPES``). In ``mode = app`` or ``both`` the login may instead be an htpasswd
line, checked by Radicale's own htpasswd plugin (``radicale.auth.htpasswd``, configured by the
usual ``[auth] htpasswd_filename`` and ``htpasswd_encryption``); such a login is served with the
app-only token. Implements Radicale 3.9's ``BaseAuth._login(login, password)`` (returns the
user name, or "" to refuse).
"""

from __future__ import annotations

import logging

from radicale import auth as radicale_auth
from radicale.auth import htpasswd

from .storage import config as plugin_config
from .storage.storage import LOGIN_APP_PASSWORD, LOGIN_HTPASSWD, login_kind
from .web.app_passwords import AppPasswords

logger = logging.getLogger("radicale_graph.auth")


class Auth(radicale_auth.BaseAuth):
    """App passwords (delegated mode) and htpasswd (app-only logins) for CalDAV clients."""

    def __init__(self, configuration) -> None:
        super().__init__(configuration)
        plugin = configuration.copy(plugin_config.PLUGIN_CONFIG_SCHEMA)
        self._mode = (plugin.get("storage", "mode") or "app").strip().lower()
        self._passwords = None
        if self._mode in ("delegated", "both"):
            self._passwords = AppPasswords(plugin.get("storage", "state_folder"))
        self._htpasswd = None
        if self._mode in ("app", "both") and configuration.get("auth", "htpasswd_filename"):
            self._htpasswd = htpasswd.Auth(configuration)

    def _login(self, login: str, password: str) -> str:
        """The user name for valid credentials, else "". Records how the person logged in
        (for the storage plugin: app password = delegated token, htpasswd = app-only)."""
        if self._passwords is not None and self._passwords.verify(login, password):
            login_kind.set(LOGIN_APP_PASSWORD)
            return login.lower()
        if self._htpasswd is not None:
            user = self._htpasswd._login(login, password)
            if user:
                login_kind.set(LOGIN_HTPASSWD)
                return user
        return ""
