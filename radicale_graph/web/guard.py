"""Hostile input, answered with a 4xx before Radicale sees the request (issue 13).

Radicale 3.9 answers these with 500 (or works for minutes), so the gateway's application
(:class:`radicale_graph.app.GatewayApplication`) calls :func:`intercept` first; nothing of
Radicale is patched, and nothing reaches the storage or Graph when a request is refused:

* **Basic credentials** that are not base64, not ASCII, or have no ``:`` (RFC 7617 section 2):
  Radicale's ``_handle_request`` decodes them unguarded -> **401** with ``WWW-Authenticate``
  as Radicale sends it. Decoding is Radicale's (``httputils.decode_request``: the configured
  request encoding, then UTF-8, then ISO-8859-1), so nothing it accepts is refused here.
* **XML with a DOCTYPE** (hence any entity definition: "billion laughs", external entities)
  in PROPFIND, PROPPATCH, REPORT, MKCALENDAR, MKCOL -> **400**. RFC 4918 section 20.6 ("XML
  documents can contain entity declarations ... denial-of-service") lets a server refuse DTDs;
  no CalDAV client sends one. The parser is defusedxml's (``forbid_dtd``, ``forbid_entities``,
  ``forbid_external``; https://github.com/tiran/defusedxml), never a regular expression.
  Radicale parses with defusedxml too, but its ``EntitiesForbidden`` is not the
  ``ParseError`` it catches, hence its 500.
* **Nesting deeper than** :data:`MAX_XML_DEPTH` -> **400**: Radicale walks request trees
  recursively (``RecursionError`` at about 1,000 levels). Depth is counted from iterparse
  start/end events, so a 100,000-deep document costs no Python recursion here either.
* **REPORT time ranges** (``C:time-range``, RFC 4791 section 9.9) and **expansions**
  (``C:expand``, section 9.6.5) beyond :data:`EARLIEST` .. :data:`LATEST`, or an expansion
  longer than :data:`MAX_EXPAND_SPAN` -> **403** with a text naming the bound; a value not
  in the UTC basic format ``YYYYMMDDTHHMMSSZ`` of those sections -> **400**.
* A ``Content-Length`` that is not a number -> 400; longer than Radicale's
  ``[server] max_content_length`` (for the XML methods, whose body is read here) -> 413.

The body of an XML method is read once (``Content-Length`` bytes) and put back into
``environ["wsgi.input"]`` as :class:`io.BytesIO`, so Radicale reads the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import logging
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as DefusedET
from radicale import httputils

from ..request_log import loggable_path
from . import answer

logger = logging.getLogger("radicale_graph.guard")

CALDAV_NS = "urn:ietf:params:xml:ns:caldav"

#: Methods whose body Radicale parses as XML (``BaseApplication._read_xml_request_body``).
XML_METHODS = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCALENDAR", "MKCOL"})

#: Deepest element nesting accepted. The deepest body a client sends is a calendar-query
#: (calendar-query/filter/comp-filter/comp-filter/prop-filter/param-filter/text-match, 7);
#: PROPPATCH property values add a few levels. Radicale's recursion fails near 1,000.
MAX_XML_DEPTH = 64

#: Earliest and latest instant a time-range or expand may name. Radicale walks a series
#: occurrence by occurrence from its DTSTART up to the range: a daily series queried at
#: year 9998 took 30 s of CPU (measured), at 2200 it is about 64,000 occurrences (under a
#: second). Year 0001 and 9999 overflow Radicale's date arithmetic (OverflowError, 500).
#: The window keeps the "far past" and "infinity" stand-ins clients use (19000101,
#: 19700101, 20380119, 21001231); an open end (no ``start`` or ``end``, RFC 4791 section
#: 9.9) is the way to ask for "unbounded" and is not refused.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

#: Longest C:expand accepted. Each occurrence becomes one VEVENT in the answer: a daily
#: series over 10 years is 3,653 of them (1.3 MB, 2 s measured); Radicale's
#: ``[reporting] max_expand_occurrence`` (10,000 per event) caps denser series. Apple's
#: clients expand weeks; Thunderbird and DAVx5 do not expand.
MAX_EXPAND_SPAN = dt.timedelta(days=3653)

#: RFC 4791 sections 9.6.5 and 9.9: "date with UTC time", e.g. 20261203T100000Z.
UTC_FORMAT = "%Y%m%dT%H%M%SZ"

Response = tuple[int, dict[str, str], bytes]


class Refused(Exception):
    """A refusal: ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def intercept(environ, configuration=None, auth=None):
    """Radicale's intermediate response ``(status_text, headers, answers)`` for a refused
    request, or None to let Radicale answer. ``auth`` is Radicale's auth backend (for its
    ``get_external_login``); ``configuration`` Radicale's configuration."""
    refusal = check(environ, configuration, auth)
    if refusal is None:
        return None
    return answer(*refusal)


def check(environ, configuration=None, auth=None) -> Response | None:
    """``(status, headers, body)`` refusing a hostile request, or None (pass on)."""
    method = environ.get("REQUEST_METHOD", "").upper()
    try:
        _check_credentials(environ, configuration, auth)
        if method in XML_METHODS:
            root = _read_xml(environ, configuration)
            if method == "REPORT" and root is not None:
                _check_report(root)
        else:
            _content_length(environ)
    except Refused as refused:
        logger.warning("%s %s refused: %d %s", method,
                       loggable_path(environ.get("PATH_INFO", "")), refused.status,
                       refused.reason)
        return _response(refused, configuration)
    return None


# -- credentials -------------------------------------------------------------------------
def _check_credentials(environ, configuration, auth) -> None:
    """What ``radicale.app.Application._handle_request`` does with ``Authorization``,
    without its unguarded exceptions (``binascii.Error``, ``UnicodeEncodeError``, and the
    ``ValueError`` of unpacking a value without ``:``)."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    if not authorization.startswith("Basic"):
        return
    if auth is not None and auth.get_external_login(environ):
        return  # Radicale ignores the header then
    encoded = authorization[len("Basic"):].strip()
    try:
        raw = base64.b64decode(encoded.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error):
        raise Refused(401, "malformed Basic credentials: not base64 (RFC 7617 section "
                           "2)") from None
    text = _decode(configuration, environ, raw)
    if ":" not in text:
        raise Refused(401, "malformed Basic credentials: no ':' between user and password "
                           "(RFC 7617 section 2)")


# -- body ------------------------------------------------------------------------------
def _content_length(environ) -> int:
    value = environ.get("CONTENT_LENGTH") or "0"
    try:
        length = int(value)
    except ValueError:
        raise Refused(400, f"Content-Length {value[:40]!r} is not a number") from None
    if length < 0:
        raise Refused(400, f"Content-Length {length} is negative")
    return length


def _read_body(environ, configuration) -> bytes:
    length = _content_length(environ)
    limit = configuration.get("server", "max_content_length") if configuration else 0
    if limit and length > limit:
        raise Refused(413, f"request body of {length} bytes is larger than the server's "
                           f"max_content_length ({limit} bytes)")
    if not length:
        return b""
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) < length:
        raise Refused(400, f"request body shorter ({len(body)} bytes) than its "
                           f"Content-Length ({length})")
    return body


def _decode(configuration, environ, raw: bytes) -> str:
    """Bytes to text as Radicale decodes request bodies and credentials."""
    if configuration is not None:
        return httputils.decode_request(configuration, environ, raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("iso8859-1")


def _read_xml(environ, configuration):
    """The parsed body (or None when empty), parsed as Radicale parses it (the decoded text)
    but with DTDs forbidden and the nesting bounded."""
    body = _read_body(environ, configuration)
    if not body:
        return None
    text = _decode(configuration, environ, body)
    if not text:
        return None
    depth = 0
    try:
        events = DefusedET.iterparse(io.StringIO(text), events=("start", "end"),
                                     forbid_dtd=True, forbid_entities=True,
                                     forbid_external=True)
        for event, _element in events:
            if event == "start":
                depth += 1
                if depth > MAX_XML_DEPTH:
                    raise Refused(400, f"XML nested deeper than {MAX_XML_DEPTH} elements")
            else:
                depth -= 1
        return events.root
    except defusedxml.DTDForbidden:
        raise Refused(400, "XML with a DOCTYPE (document type declaration) is refused: "
                           "entity definitions are an XML attack (RFC 4918 section "
                           "20.6)") from None
    except defusedxml.EntitiesForbidden:
        raise Refused(400, "XML with entity definitions is refused (RFC 4918 section "
                           "20.6)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise Refused(400, "XML referring to external entities is refused (RFC 4918 "
                           "section 20.6)") from None
    except defusedxml.DefusedXmlException as exc:
        raise Refused(400, f"XML refused: {exc}") from None
    except ParseError as exc:
        raise Refused(400, f"the request body is not well-formed XML: {exc}") from None


# -- REPORT bounds -----------------------------------------------------------------------
def _check_report(root) -> None:
    """Time ranges and expansions within :data:`EARLIEST` .. :data:`LATEST`; expansions no
    longer than :data:`MAX_EXPAND_SPAN`."""
    for name in ("time-range", "expand"):
        for element in root.iter(f"{{{CALDAV_NS}}}{name}"):
            start = _instant(element, name, "start")
            end = _instant(element, name, "end")
            for which, value in (("start", start), ("end", end)):
                if value is not None and not EARLIEST <= value <= LATEST:
                    raise Refused(403, f"C:{name} {which} {_show(value)} is outside the "
                                       f"range this server answers, {_show(EARLIEST)} to "
                                       f"{_show(LATEST)}; leave {which} out for an open "
                                       f"range (RFC 4791 section 9.9)")
            if name == "expand" and start and end and end - start > MAX_EXPAND_SPAN:
                raise Refused(403, f"C:expand over {(end - start).days} days is longer than "
                                   f"this server expands ({MAX_EXPAND_SPAN.days} days); ask "
                                   f"for shorter ranges")


def _instant(element, name: str, attribute: str) -> dt.datetime | None:
    text = element.get(attribute)
    if text is None or (not text and name == "time-range"):  # Radicale: "" is an open end
        return None
    try:
        return dt.datetime.strptime(text, UTC_FORMAT).replace(tzinfo=dt.UTC)
    except ValueError:
        section = "9.6.5" if name == "expand" else "9.9"
        raise Refused(400, f"C:{name} {attribute}={text[:40]!r} is not a UTC date-time "
                           f"YYYYMMDDTHHMMSSZ (RFC 4791 section {section})") from None


def _show(value: dt.datetime) -> str:
    return f"{value.year:04d}{value:%m%dT%H%M%SZ}"  # %Y does not pad year 1 to 0001


# -- answers ---------------------------------------------------------------------------
def _response(refused: Refused, configuration) -> Response:
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if refused.status == 401:
        realm = configuration.get("auth", "realm") if configuration else "Radicale"
        headers["WWW-Authenticate"] = f'Basic realm="{realm}"'
    if configuration is not None:  # Radicale adds the configured [headers] to every answer
        for key in configuration.options("headers"):
            headers[key] = configuration.get("headers", key)
    return refused.status, headers, (refused.reason + "\n").encode("utf-8")
