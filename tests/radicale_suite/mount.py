"""The URL mount between Radicale's test namespace and the gateway's.

Radicale's tests keep their collections at the server root (``/calendar.ics/event1.ics``); the
gateway serves ``/<mailbox>/<calendar>/<resource>``. The mount places the test root at one
mailbox principal: test ``/`` is ``/<mailbox>/``, test ``/<name>/...`` is
``/<mailbox>/<calendar>/...`` where ``<calendar>`` is the gateway calendar the name was given to
(:meth:`Mount.claim`; an unclaimed name is used as is, so it names no calendar). Everything that
carries a path is translated, and nothing else: the request path, ``Destination``, ``D:href`` in
request and response bodies, ``Location``, and the paths the rights backend is asked about.

Three kinds of test paths pass unchanged: those naming Radicale's own endpoints (a segment that
starts with ``.``, such as ``/.web`` and ``/.well-known/caldav``); GET/HEAD of the root, which
is Radicale's redirect to its web interface and is served at the gateway's real root; and the
principal ``/<login>/`` of a login the gateway serves as a mailbox.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from radicale import rights as radicale_rights

DAV_HREF = "{DAV:}href"
ROOT_METHODS_KEPT = ("GET", "HEAD")


class Mount:
    """Path translation for one test. ``mailbox`` is the lower-case address of the mailbox the
    test root is mounted at; ``names`` maps test collection names to gateway calendar names;
    ``principals`` are logins the gateway serves as mailboxes: their principal ``/<login>/``
    is the gateway's principal of that name, as in Radicale's layout, and is not mounted."""

    def __init__(self, mailbox: str, principals: Iterable[str] = ()) -> None:
        self.mailbox = mailbox.lower()
        self.principals = frozenset(principals)
        self.names: dict[str, str] = {}
        self._reverse: dict[str, str] = {}

    # -- claims ---------------------------------------------------------------------------
    def claim(self, test_name: str, calendar: str) -> None:
        """Give the test collection ``test_name`` the gateway calendar ``calendar``."""
        if calendar in self._reverse:
            raise ValueError(f"calendar {calendar!r} is already mounted as "
                             f"{self._reverse[calendar]!r}")
        self.names[test_name] = calendar
        self._reverse[calendar] = test_name

    def claimed(self, calendar: str) -> bool:
        """Whether a test collection already has the gateway calendar ``calendar``."""
        return calendar in self._reverse

    @staticmethod
    def collection_name(path: str) -> str | None:
        """The name of a root-level test collection path (``/name/``), else ``None``."""
        parts = [p for p in path.split("/") if p]
        return parts[0] if len(parts) == 1 and not parts[0].startswith(".") else None

    # -- test -> gateway ------------------------------------------------------------------
    def to_gateway(self, path: str, method: str = "") -> str:
        """Gateway path (unquoted) for a test path (unquoted, as in ``PATH_INFO``)."""
        stripped = path.lstrip("/")
        if any(part.startswith(".") for part in stripped.split("/")):
            return path
        if not stripped:
            return path if method.upper() in ROOT_METHODS_KEPT else f"/{self.mailbox}/"
        first, sep, rest = stripped.partition("/")
        if first in self.principals:
            return path
        return f"/{self.mailbox}/{self.names.get(first, first)}{sep}{rest}"

    def href_to_gateway(self, href: str) -> str:
        """A request ``D:href`` or ``Destination`` path, keeping its quoting style."""
        quoted = unquote(href) != href
        mapped = self.to_gateway(unquote(href))
        return quote(mapped) if quoted else mapped

    # -- gateway -> test ------------------------------------------------------------------
    def to_test(self, path: str) -> str:
        """Test path (unquoted) for a gateway path (unquoted); paths outside the mount are
        returned unchanged."""
        parts = [p for p in path.split("/") if p]
        if not parts or parts[0].lower() != self.mailbox:
            return path
        parts = parts[1:]
        if not parts:
            return "/"
        parts[0] = self._reverse.get(parts[0], parts[0])
        return "/" + "/".join(parts) + ("/" if path.endswith("/") else "")

    def href_to_test(self, href: str, prefixes: Iterable[str] = ("",)) -> str:
        """A response ``D:href`` or ``Location`` (with an optional base prefix such as
        ``SCRIPT_NAME``), keeping its quoting style."""
        quoted = "%" in href
        plain = unquote(href)
        for prefix in sorted(set(prefixes), key=len, reverse=True):
            if plain.startswith(f"{prefix}/{self.mailbox}/") or \
                    plain.lower() == f"{prefix}/{self.mailbox}":
                mapped = prefix + self.to_test(plain[len(prefix):])
                return quote(mapped) if quoted else mapped
        return href


def _rewrite_hrefs(body: bytes, convert: Callable[[str], str]) -> bytes | None:
    """``body`` with every ``D:href`` text converted, or ``None`` if it is not XML or has none."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    hrefs = list(root.iter(DAV_HREF))
    if not hrefs:
        return None
    for element in hrefs:
        if element.text and element.text.strip():
            element.text = convert(element.text.strip())
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class MountedApplication:
    """WSGI application that serves the test namespace through ``mount`` from ``app``."""

    def __init__(self, app, mount: Mount) -> None:
        self.app = app
        self.mount = mount

    def __call__(self, environ: dict, start_response):
        environ = dict(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        environ["PATH_INFO"] = self.mount.to_gateway(environ.get("PATH_INFO", ""), method)
        if environ.get("HTTP_DESTINATION"):
            url = urlsplit(environ["HTTP_DESTINATION"])
            environ["HTTP_DESTINATION"] = urlunsplit(
                url._replace(path=self.mount.href_to_gateway(url.path)))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            body = environ["wsgi.input"].read(length)
            if b"href" in body.lower():
                body = _rewrite_hrefs(body, self.mount.href_to_gateway) or body
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))

        captured: dict = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, list(headers)

        answers = list(self.app(environ, capture))
        prefixes = ("", environ.get("SCRIPT_NAME", "").rstrip("/"),
                    environ.get("HTTP_X_SCRIPT_NAME", "").rstrip("/"))
        body = b"".join(answers)
        headers = dict(captured["headers"])
        if "Location" in headers:
            headers["Location"] = self.mount.href_to_test(headers["Location"], prefixes)
        if body and "xml" in headers.get("Content-Type", "") and \
                "Content-Encoding" not in headers:
            rewritten = _rewrite_hrefs(
                body, lambda href: self.mount.href_to_test(href, prefixes))
            if rewritten is not None:
                body = rewritten
                headers["Content-Length"] = str(len(body))
        start_response(captured["status"], list(headers.items()))
        return [body] if answers else []


class MountedRights:
    """A callable ``[rights] type``: builds the configured rights backend (``inner_type``) and
    asks it about test paths, so a rights file written for the test namespace keeps its
    meaning."""

    def __init__(self, mount: Mount, inner_type) -> None:
        self.mount = mount
        self.inner_type = inner_type

    def __call__(self, configuration) -> radicale_rights.BaseRights:
        inner_configuration = configuration.copy()
        inner_configuration.update({"rights": {"type": self.inner_type}}, "radicale-graph mount",
                                   privileged=True)
        return _Rights(configuration, radicale_rights.load(inner_configuration), self.mount)


class _Rights(radicale_rights.BaseRights):
    def __init__(self, configuration, inner: radicale_rights.BaseRights, mount: Mount) -> None:
        super().__init__(configuration)
        self._inner = inner
        self._mount = mount

    def authorization(self, user: str, user_groups: set, path: str) -> str:
        return self._inner.authorization(user, user_groups, self._mount.to_test(path))
