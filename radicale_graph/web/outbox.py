"""Free/busy of people and rooms through the CalDAV scheduling outbox (RFC 6638), from Graph.

Radicale 3.9 implements none of RFC 6638; the gateway adds the part clients use to show
attendees' and rooms' availability (Apple Calendar's and Thunderbird's "availability" views):

* **Discovery** (RFC 6638 section 2.1.1): a PROPFIND on the login's principal ``/<login>/``
  asking for ``C:schedule-outbox-URL`` is answered ``/<login>/.outbox/``
  (:func:`principal_properties` moves the property from Radicale's 404 propstat to a 200 one).
  ``C:calendar-user-address-set`` (RFC 6638 section 2.4.1; Radicale answers it with the
  principal's path only) gets ``mailto:<login>`` first, so a client knows which ORGANIZER
  and ATTENDEE address is the login's own.
* **Busy time request** (RFC 6638 section 5, RFC 5546 section 3.3.2): ``POST /<login>/.outbox/``
  with ``Content-Type: text/calendar`` and a VCALENDAR ``METHOD:REQUEST`` holding one
  VFREEBUSY (ORGANIZER = the login, one ATTENDEE per person or room asked, DTSTART/DTEND).
  The answer is 200 with a ``C:schedule-response`` (RFC 6638 sections 10.2-10.5): one
  ``C:response`` per attendee with ``C:recipient``, ``C:request-status`` (RFC 5546 section
  3.6: ``2.0;Success``, ``3.7;Invalid calendar user``, ``3.8;No authority``) and, on
  success, ``C:calendar-data``: a VCALENDAR ``METHOD:REPLY`` with a VFREEBUSY (RFC 5546
  section 3.3.3) whose FREEBUSY periods are Graph's.

Graph: ``POST {user}/calendar/getSchedule`` (api/calendar-getschedule.md) takes up to 20
``schedules`` and a period under 62 days; :func:`radicale_graph.storage.free_busy.fetch_schedules`
splits a request into ceil(attendees / 20) x ceil(days / 61) calls, so two people and a room
over a week cost one Graph request. The user path is the requester's: with the app-only token
``/users/{login}`` (a login that is no served mailbox asks through the first served one; the
app sees every schedule alike), a person signed in with Microsoft asks with their own token
through ``/me`` (:meth:`~radicale_graph.storage.storage.Storage.person_for`). Exchange gives
everyone in the organisation free/busy by default ("My Organization": ``freeBusyRead``,
resources/calendarpermission.md), so people and rooms the login may not open still answer;
only status, start and end of each item reach the reply, never subjects or locations.

Graph ``status`` -> FBTYPE (RFC 5545 section 3.2.9): ``busy`` BUSY, ``tentative``
BUSY-TENTATIVE, ``oof`` BUSY-UNAVAILABLE, ``workingElsewhere`` and ``unknown`` BUSY (as
:mod:`radicale_graph.storage.free_busy` shows them in a free-busy-query REPORT); ``free``
items are left out. Periods are clipped to the asked DTSTART/DTEND.

The login is checked by Radicale's own authentication (this runs as ``do_POST`` of
:class:`radicale_graph.app.GatewayApplication`, after ``self._auth.login``): no login is
401, another login's outbox or an ORGANIZER that is not the login is 403
(``C:organizer-allowed``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import xml.etree.ElementTree as ET
from http import client as http_client
from urllib.parse import unquote

import icalendar
from radicale import httputils, xmlutils

from ..graph import AccessDenied
from ..storage.free_busy import fetch_schedules, schedule_instant

logger = logging.getLogger("radicale_graph.outbox")

UTC = dt.UTC
OUTBOX = ".outbox"
DAV_NS = "DAV:"
CALDAV_NS = "urn:ietf:params:xml:ns:caldav"
PRODID = "-//radicale-graph//outbox//EN"
#: Most ATTENDEEs in one request: 100 = 5 getSchedule calls per 61 days.
MAX_ATTENDEES = 100
#: Longest DTSTART..DTEND: a year, 6 getSchedule calls per 20 attendees. Clients ask for a
#: day to a few weeks.
MAX_PERIOD = dt.timedelta(days=366)

#: Graph scheduleItem status -> RFC 5545 FBTYPE (section 3.2.9); free is left out.
FBTYPE = {"busy": "BUSY", "tentative": "BUSY-TENTATIVE", "oof": "BUSY-UNAVAILABLE",
          "workingelsewhere": "BUSY", "unknown": "BUSY"}

_OUTBOX_PATH = re.compile(r"^/([^/]+)/\.outbox/?$")

_SCHEDULE_OUTBOX_URL = f"{{{CALDAV_NS}}}schedule-outbox-URL"
_USER_ADDRESS_SET = f"{{{CALDAV_NS}}}calendar-user-address-set"


def outbox_owner(path: str) -> str | None:
    """The login whose outbox ``path`` (Radicale's sanitized path) is, else None."""
    match = _OUTBOX_PATH.match(path or "")
    return unquote(match.group(1)) if match else None


# -- discovery: PROPFIND of the principal ----------------------------------------------------

def principal_properties(answer: tuple, base_prefix: str, user: str) -> tuple:
    """Radicale's PROPFIND answer ``(status, headers, body, xml_request)`` with the RFC 6638
    principal properties of the login's own principal ``/<user>/``:

    * ``C:schedule-outbox-URL`` (section 2.1.1), when asked, moved from the 404 propstat to
      the 200 one as ``<D:href>/<user>/.outbox/</D:href>``;
    * ``C:calendar-user-address-set`` (section 2.4.1) gets ``mailto:<user>`` before the
      principal path Radicale puts there (when the login is an address).

    Anything else (another status, other responses, no login) is returned unchanged."""
    status, headers, body, xml_request = answer
    if not user or status != http_client.MULTI_STATUS or not isinstance(body, bytes) \
            or (b"schedule-outbox-URL" not in body
                and b"calendar-user-address-set" not in body):
        return answer
    try:
        root = ET.fromstring(body)  # Radicale's own serialization, not the client's
    except ET.ParseError:
        return answer
    principal = f"{base_prefix}/{user}/"
    changed = False
    for response in root.findall(f"{{{DAV_NS}}}response"):
        href = response.findtext(f"{{{DAV_NS}}}href") or ""
        if unquote(href).lower() != principal.lower():
            continue
        changed |= _fix_principal(response, base_prefix, user)
    if not changed:
        return answer
    new_body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return status, headers, new_body, xml_request


def _fix_principal(response: ET.Element, base_prefix: str, user: str) -> bool:
    ok_prop = None
    moved = False
    for propstat in response.findall(f"{{{DAV_NS}}}propstat"):
        code = (propstat.findtext(f"{{{DAV_NS}}}status") or "").split(" ")
        prop = propstat.find(f"{{{DAV_NS}}}prop")
        if prop is None or len(code) < 2:
            continue
        if code[1] == "200":
            ok_prop = prop
            for element in prop.findall(_USER_ADDRESS_SET):
                if "@" in user and not any((h.text or "").lower() == f"mailto:{user}".lower()
                                           for h in element):
                    mailto = ET.Element(f"{{{DAV_NS}}}href")
                    mailto.text = f"mailto:{user}"
                    element.insert(0, mailto)
                    moved = True
    for propstat in response.findall(f"{{{DAV_NS}}}propstat"):
        code = (propstat.findtext(f"{{{DAV_NS}}}status") or "").split(" ")
        prop = propstat.find(f"{{{DAV_NS}}}prop")
        if prop is None or len(code) < 2 or code[1] != "404":
            continue
        element = prop.find(_SCHEDULE_OUTBOX_URL)
        if element is None:
            continue
        prop.remove(element)
        if len(prop) == 0:
            response.remove(propstat)
        if ok_prop is None:
            ok_stat = ET.Element(f"{{{DAV_NS}}}propstat")
            ok_prop = ET.SubElement(ok_stat, f"{{{DAV_NS}}}prop")
            ET.SubElement(ok_stat, f"{{{DAV_NS}}}status").text = "HTTP/1.1 200 OK"
            response.insert(1, ok_stat)
        outbox = ET.SubElement(ok_prop, _SCHEDULE_OUTBOX_URL)
        ET.SubElement(outbox, f"{{{DAV_NS}}}href").text = xmlutils.make_href(
            base_prefix, f"/{user}/{OUTBOX}/")
        moved = True
    return moved


# -- the busy time request -------------------------------------------------------------------

class Refusal(Exception):
    """A request the outbox refuses: HTTP ``status``, a CalDAV ``precondition`` (or "")."""

    def __init__(self, status: int, message: str, precondition: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.precondition = precondition


def _refusal_response(refusal: Refusal):
    text = str(refusal).strip()
    if refusal.precondition:
        root = ET.Element(f"{{{DAV_NS}}}error")
        ET.SubElement(root, f"{{{CALDAV_NS}}}{refusal.precondition}")
        ET.SubElement(root, f"{{{DAV_NS}}}responsedescription").text = text
        body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
        return refusal.status, {"Content-Type": "application/xml; charset=utf-8"}, body, None
    return (refusal.status, {"Content-Type": "text/plain; charset=utf-8"},
            (text + "\n").encode(), None)


def _address(value) -> str:
    """The lower-case address of a ``mailto:`` cal-address, "" for any other URI."""
    text = str(value or "").strip()
    if not text.lower().startswith("mailto:"):
        return ""
    address = unquote(text[len("mailto:"):]).strip().lower()
    return address if re.fullmatch(r"[^@\s/]+@[^@\s/]+", address) else ""


def _instant(prop, name: str) -> dt.datetime:
    value = getattr(prop, "dt", None)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise Refusal(400, f"the VFREEBUSY's {name} is missing or not a date-time",
                  "valid-calendar-data")


def parse_request(text: str, login: str):
    """(calendar, VFREEBUSY, attendee values, start, end) of a busy time request (RFC 5546
    section 3.3.2: METHOD:REQUEST, one VFREEBUSY with ORGANIZER, ATTENDEE, DTSTART, DTEND;
    DURATION is accepted for DTEND). Raises :class:`Refusal`: 400 ``valid-calendar-data`` for
    unparsable iCalendar, 403 ``valid-scheduling-message`` for another METHOD or component
    (the gateway delivers no invitations: Exchange sends them when an event with attendees is
    saved), 403 ``organizer-allowed`` when ORGANIZER is not ``mailto:<login>`` (RFC 6638
    section 5: the outbox owner's address), 403 for more than :data:`MAX_ATTENDEES`
    attendees or a period longer than :data:`MAX_PERIOD`."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as exc:
        raise Refusal(400, f"the request is not valid iCalendar: {exc}",
                      "valid-calendar-data") from None
    if calendar.name != "VCALENDAR":
        raise Refusal(400, "the request is not a VCALENDAR", "valid-calendar-data")
    method = str(calendar.get("METHOD", "")).upper()
    components = [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]
    if method != "REQUEST" or len(components) != 1 or components[0].name != "VFREEBUSY":
        raise Refusal(403, "the scheduling outbox answers busy time requests only (METHOD:"
                           "REQUEST with one VFREEBUSY, RFC 6638 section 5); invitations "
                           "and replies are sent by Exchange when the event is saved",
                      "valid-scheduling-message")
    request = components[0]
    organizer = request.get("ORGANIZER")
    if organizer is None:
        raise Refusal(403, "the VFREEBUSY has no ORGANIZER", "valid-scheduling-message")
    if _address(organizer) != login.lower():
        raise Refusal(403, f"ORGANIZER {str(organizer)!r} is not your address "
                           f"mailto:{login}: you may ask for free/busy only as yourself",
                      "organizer-allowed")
    attendees = request.get("ATTENDEE")
    attendees = [] if attendees is None else \
        attendees if isinstance(attendees, list) else [attendees]
    if not attendees:
        raise Refusal(403, "the VFREEBUSY names no ATTENDEE to ask for",
                      "valid-scheduling-message")
    if len(attendees) > MAX_ATTENDEES:
        raise Refusal(403, f"at most {MAX_ATTENDEES} attendees per request, "
                           f"got {len(attendees)}", "valid-scheduling-message")
    start = _instant(request.get("DTSTART"), "DTSTART")
    if request.get("DTEND") is not None:
        end = _instant(request.get("DTEND"), "DTEND")
    elif request.get("DURATION") is not None and \
            isinstance(request["DURATION"].dt, dt.timedelta):
        end = start + request["DURATION"].dt
    else:
        raise Refusal(400, "the VFREEBUSY has no DTEND", "valid-calendar-data")
    if end <= start:
        raise Refusal(400, "the VFREEBUSY's DTEND is not after its DTSTART",
                      "valid-calendar-data")
    if end - start > MAX_PERIOD:
        raise Refusal(403, f"free/busy can be asked for {MAX_PERIOD.days} days at most, "
                           f"not {(end - start).days}", "valid-scheduling-message")
    return calendar, request, attendees, start, end


def _periods(items: list[dict], start: dt.datetime, end: dt.datetime):
    periods = set()
    for item in items:
        status = str(item.get("status") or "busy").lower()
        if status == "free":
            continue
        fbtype = FBTYPE.get(status, "BUSY")
        low = max(schedule_instant(item["start"]), start)
        high = min(schedule_instant(item["end"]), end)
        if low < high:
            periods.add((low, high, fbtype))
    return sorted(periods)


def reply_calendar(request, attendee, items: list[dict], start: dt.datetime,
                   end: dt.datetime, now: dt.datetime) -> str:
    """The VCALENDAR ``METHOD:REPLY`` of one attendee (RFC 5546 section 3.3.3): a VFREEBUSY
    with the request's UID and ORGANIZER, the ATTENDEE, DTSTAMP, DTSTART/DTEND in UTC and
    one FREEBUSY per busy period (clipped to the period, in time order)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    reply = icalendar.FreeBusy()
    if request.get("UID") is not None:
        reply.add("uid", str(request["UID"]))
    reply.add("dtstamp", now)
    reply.add("dtstart", start)
    reply.add("dtend", end)
    reply["organizer"] = request["ORGANIZER"]
    reply["attendee"] = attendee
    for low, high, fbtype in _periods(items, start, end):
        reply.add("freebusy", (low, high), parameters={"FBTYPE": fbtype})
    calendar.add_component(reply)
    return calendar.to_ical().decode()


def _status_of(error: BaseException) -> str:
    if isinstance(error, AccessDenied):
        return "3.8;No authority"
    return "3.7;Invalid calendar user"


def schedule_response(results: list[tuple[str, str, str | None, str]]) -> bytes:
    """The ``C:schedule-response`` (RFC 6638 sections 10.2-10.5) for (recipient href,
    request-status, calendar-data or None, description) tuples, one ``C:response`` each."""
    root = ET.Element(f"{{{CALDAV_NS}}}schedule-response")
    for href, status, data, description in results:
        response = ET.SubElement(root, f"{{{CALDAV_NS}}}response")
        recipient = ET.SubElement(response, f"{{{CALDAV_NS}}}recipient")
        ET.SubElement(recipient, f"{{{DAV_NS}}}href").text = href
        ET.SubElement(response, f"{{{CALDAV_NS}}}request-status").text = status
        if data is not None:
            ET.SubElement(response, f"{{{CALDAV_NS}}}calendar-data").text = data
        if description:
            ET.SubElement(response, f"{{{DAV_NS}}}responsedescription").text = description
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def requester(storage, user: str):
    """(client, user path, mailbox) for getSchedule asked as login ``user``: the person's own
    token and ``/me`` when they are served delegated (``Storage.person_for``), else the app
    client and ``/users/{user}`` -- or the first served mailbox for a login that is none
    (app-only, the app sees every schedule alike; api/calendar-getschedule.md)."""
    person = storage.person_for(user)
    if person:
        client, user_path = storage._me_route(person)
        return client, user_path, person
    login = user.lower()
    served = storage.options.mailboxes
    mailbox = login if login in served or not served else served[0]
    return storage.client, f"/users/{mailbox}", mailbox


def post(storage, configuration, environ, base_prefix: str, path: str, user: str):
    """``POST /<login>/.outbox/`` (RFC 6638 section 5), as Radicale's ``do_POST`` answers:
    (status, headers, body, None). No login: Radicale's NOT_ALLOWED (it answers 401 with
    ``WWW-Authenticate``); another login's outbox: 403; a body that is not ``text/calendar``:
    415; a refused request: see :func:`parse_request`. Graph failures of the whole call
    (throttling, network, auth) are recorded (:mod:`radicale_graph.storage.errors`) and
    answered by the application as for any storage error (503 with Retry-After, 502, 504)."""
    if not user:
        return httputils.NOT_ALLOWED
    owner = outbox_owner(path) or ""
    try:
        if owner.lower() != user.lower():
            raise Refusal(403, f"/{owner}/{OUTBOX}/ is not your scheduling outbox: post "
                               f"free/busy requests to /{user}/{OUTBOX}/")
        content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "text/calendar":
            raise Refusal(415, "the scheduling outbox takes text/calendar (a VFREEBUSY "
                               f"request, RFC 6638 section 5), not {content_type or 'nothing'}")
        limit = configuration.get("server", "max_content_length")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if limit and length > limit:
            raise Refusal(413, f"the request is larger than {limit} bytes")
        raw = httputils.read_raw_request_body(configuration, environ)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal(400, "the request is not UTF-8", "valid-calendar-data") from None
        _calendar, request, attendees, start, end = parse_request(text, user)
    except Refusal as refusal:
        logger.info("outbox POST by %s refused: %d %s", user, refusal.status, refusal)
        return _refusal_response(refusal)
    except ValueError:
        return httputils.BAD_REQUEST

    asked = [(value, _address(value)) for value in attendees]
    addresses = [address for _, address in asked if address]
    with storage.acquire_lock("r", user):
        try:
            client, user_path, mailbox = requester(storage, user)
            results = fetch_schedules(client, user_path, mailbox, addresses, start, end) \
                if addresses else {}
        except Exception as exc:
            storage.report(exc)  # the application answers with the cause (app.error_response)
            logger.info("outbox POST by %s: getSchedule failed: %s", user, exc)
            return httputils.INTERNAL_SERVER_ERROR
    now = dt.datetime.now(UTC).replace(microsecond=0)
    answers = []
    for value, address in asked:
        href = str(value)
        result = results.get(address) if address else None
        if result is None:
            answers.append((href, "3.7;Invalid calendar user", None,
                            f"{href} is not an email address (mailto:) Exchange knows"))
        elif isinstance(result, BaseException):
            answers.append((href, _status_of(result), None, str(result)))
        else:
            answers.append((href, "2.0;Success",
                            reply_calendar(request, value, result, start, end, now), ""))
    logger.info("outbox POST by %s: free/busy of %d attendee(s), %s to %s", user,
                len(answers), start.isoformat(), end.isoformat())
    return (http_client.OK, {"Content-Type": "application/xml; charset=utf-8"},
            schedule_response(answers), None)
