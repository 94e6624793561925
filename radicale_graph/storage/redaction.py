"""What a person who shares someone else's Exchange calendar may see of one calendar object.

Pure functions: no I/O. The input is the full iCalendar text (RFC 5545) of one calendar object
resource: a VCALENDAR holding one or more VEVENTs of the same UID (a master and its
RECURRENCE-ID overrides) and the VTIMEZONEs they refer to. The output is iCalendar text too.
Parsing and serialising go through the ``icalendar`` library only.

Sources:

- Microsoft Graph, resources/calendarpermission.md (``microsoftgraph/microsoft-graph-docs-
  contrib``, api-reference/v1.0), the ``calendarRoleType`` roles: ``none``; ``freeBusyRead``
  (free/busy only); ``limitedRead`` ("free/busy, titles and locations"); ``read`` ("all details
  except the owner's private events"); ``write`` (read and edit, private events excepted as
  for ``read``); ``delegateWithoutPrivateEventAccess`` (a delegate who "can't view information
  of the owner's private events"); ``delegateWithPrivateEventAccess`` (a delegate who also sees
  private events); ``custom``.
- RFC 5545 section 3.8.1.3 (CLASS): ``PUBLIC`` (the default when CLASS is absent),
  ``PRIVATE``, ``CONFIDENTIAL``; "Applications MUST treat x-name and iana-token values they
  don't recognize the same way as they would the PRIVATE value". Graph's ``sensitivity``
  ``private`` and ``confidential`` travel as CLASS:PRIVATE and CLASS:CONFIDENTIAL, Graph's
  ``personal`` as the x-name CLASS:X-PERSONAL (radicale_graph/translation/values.py), which is
  therefore not private here; any other unrecognised CLASS value is private.

Views (``str`` constants, one per kind of reader):

- :data:`FULL`: the text unchanged (owner, ``delegateWithPrivateEventAccess``).
- :data:`PRIVATE_HIDDEN`: VEVENTs whose CLASS is private (see :func:`event_is_private`)
  become busy blocks, the others are kept whole (``read``, ``write``,
  ``delegateWithoutPrivateEventAccess``, ``custom``).
- :data:`LIMITED`: every VEVENT keeps only its times, SUMMARY and LOCATION; private ones
  become busy blocks (``limitedRead``).
- :data:`FREE_BUSY`: every VEVENT becomes a busy block (``freeBusyRead``).

A busy block is a VEVENT that keeps only the properties in :data:`BUSY_KEEP` (UID, DTSTAMP,
DTSTART, DTEND or DURATION, RRULE, RDATE, EXDATE, RECURRENCE-ID, SEQUENCE, STATUS, TRANSP,
CLASS, X-MICROSOFT-CDO-BUSYSTATUS) and gets ``SUMMARY:Busy``; it has no subcomponent (no
VALARM). A LIMITED VEVENT keeps :data:`LIMITED_KEEP` (the busy-block set, SUMMARY, LOCATION)
and no subcomponent. Whenever an object is rewritten, its VTIMEZONEs are kept whole (DTSTART
and friends refer to them by TZID), every other top-level component (VTODO, VJOURNAL,
VFREEBUSY, ...) is dropped and the VCALENDAR keeps only :data:`CALENDAR_KEEP` (PRODID,
VERSION, CALSCALE, METHOD). Each VEVENT is judged by its own CLASS: an override is a whole
replacement of its occurrence (RFC 5545 3.8.4.4), so a private override of a public master
hides that occurrence only.

Which view a reader gets is :func:`view_for_role`::

    view_for_role(role: str, owner: bool) -> str | None

    owner=True                                             -> FULL (whatever the role)
    "delegateWithPrivateEventAccess"                       -> FULL
    "read", "write", "delegateWithoutPrivateEventAccess",
    "custom"                                               -> PRIVATE_HIDDEN
    "limitedRead"                                          -> LIMITED
    "freeBusyRead"                                         -> FREE_BUSY ("free-busy")
    "none", anything else                                  -> None (no access)

The role is matched without regard to case (Graph's ``calendarRoleType`` schema pattern is
case-insensitive).
"""

from __future__ import annotations

import icalendar

FULL = "full"
PRIVATE_HIDDEN = "private-hidden"
LIMITED = "limited"
FREE_BUSY = "free-busy"
#: The views a reader of event details may get (:data:`FREE_BUSY` is accepted by
#: :func:`redact` too, for ``freeBusyRead``).
VIEWS = (FULL, PRIVATE_HIDDEN, LIMITED)
_ALL_VIEWS = VIEWS + (FREE_BUSY,)

#: The summary a busy block carries instead of the event's subject.
BUSY_SUMMARY = "Busy"

#: Properties a busy block keeps: the times, the recurrence, the identity and free/busy.
BUSY_KEEP = frozenset({
    "UID", "DTSTAMP", "DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE",
    "RECURRENCE-ID", "SEQUENCE", "STATUS", "TRANSP", "CLASS", "X-MICROSOFT-CDO-BUSYSTATUS",
})
#: Properties a VEVENT keeps in the LIMITED view ("free/busy, titles and locations").
LIMITED_KEEP = BUSY_KEEP | {"SUMMARY", "LOCATION"}
#: VCALENDAR properties kept when an object is rewritten.
CALENDAR_KEEP = frozenset({"PRODID", "VERSION", "CALSCALE", "METHOD"})

#: CLASS values that are not private (RFC 5545 3.8.1.3: every other value is treated as
#: PRIVATE; X-PERSONAL is this project's CLASS for Graph's ``personal`` sensitivity).
_NOT_PRIVATE_CLASSES = frozenset({"PUBLIC", "X-PERSONAL"})

_ROLE_VIEWS = {
    "delegatewithprivateeventaccess": FULL,
    "read": PRIVATE_HIDDEN,
    "write": PRIVATE_HIDDEN,
    "delegatewithoutprivateeventaccess": PRIVATE_HIDDEN,
    "custom": PRIVATE_HIDDEN,
    "limitedread": LIMITED,
    "freebusyread": FREE_BUSY,
}


def view_for_role(role: str, owner: bool) -> str | None:
    """The view of a reader holding the Graph ``calendarPermission`` ``role`` (a
    ``calendarRoleType`` name such as ``"read"``); ``owner`` is true for the calendar's owner,
    who sees everything. One of :data:`FULL`, :data:`PRIVATE_HIDDEN`, :data:`LIMITED`,
    :data:`FREE_BUSY`, or ``None`` for ``none`` and unknown roles (no access)."""
    if owner:
        return FULL
    if not isinstance(role, str):
        return None
    return _ROLE_VIEWS.get(role.casefold())


def _parse(text: str) -> icalendar.Calendar:
    """The VCALENDAR of ``text``; ``ValueError`` if ``text`` is not exactly one VCALENDAR."""
    if not isinstance(text, str):
        raise TypeError(f"iCalendar text must be str, not {type(text).__name__}")
    try:
        component = icalendar.Calendar.from_ical(text)
    except ValueError as exc:
        raise ValueError(f"not an iCalendar VCALENDAR object: {exc}") from exc
    if not isinstance(component, icalendar.Calendar) or component.name != "VCALENDAR":
        name = getattr(component, "name", None) or type(component).__name__
        raise ValueError(f"not an iCalendar VCALENDAR object: the text is a {name}")
    return component


def _values(value) -> list:
    """A property's value(s) as a list (``icalendar`` gives a list for repeated properties)."""
    return list(value) if isinstance(value, list) else [value]


def event_is_private(event: icalendar.Component) -> bool:
    """Whether one VEVENT is private: a CLASS other than PUBLIC and X-PERSONAL (RFC 5545
    3.8.1.3: PRIVATE, CONFIDENTIAL and any unrecognised value). No CLASS means PUBLIC."""
    if "CLASS" not in event:
        return False
    return any(str(value).strip().upper() not in _NOT_PRIVATE_CLASSES
               for value in _values(event["CLASS"]))


def is_private(text: str) -> bool:
    """Whether any VEVENT of the object in ``text`` (iCalendar text of one VCALENDAR) is private
    (CLASS PRIVATE or CONFIDENTIAL, Graph ``sensitivity`` private/confidential; see
    :func:`event_is_private`). ``ValueError`` if ``text`` is not a VCALENDAR."""
    return any(event_is_private(c) for c in _parse(text).subcomponents if c.name == "VEVENT")


def _kept_event(event: icalendar.Component, keep: frozenset,
                busy: bool) -> tuple[icalendar.Event, bool]:
    """A copy of ``event`` with only the properties named in ``keep``, in their original order,
    with their parameters, no subcomponent, and ``SUMMARY:Busy`` if ``busy``; and whether
    anything was left out or replaced."""
    out = icalendar.Event()
    changed = bool(event.subcomponents)
    for name, value in event.items():
        if busy and name.upper() == "SUMMARY":
            changed = changed or [str(v) for v in _values(value)] != [BUSY_SUMMARY]
            out["SUMMARY"] = icalendar.vText(BUSY_SUMMARY)
        elif name.upper() in keep:
            out[name] = value
        else:
            changed = True
    if busy and "SUMMARY" not in out:
        changed = True
        out["SUMMARY"] = icalendar.vText(BUSY_SUMMARY)
    return out, changed


def _event_for_view(event: icalendar.Component, view: str,
                    series_private: bool = False) -> tuple[icalendar.Component, bool]:
    """``event`` (a VEVENT) as ``view`` shows it, and whether that differs from ``event``;
    ``series_private``: the series master is private, so every occurrence of it is too
    (an override that repeats no CLASS inherits the master's sensitivity in Exchange)."""
    if view == FREE_BUSY or series_private or event_is_private(event):
        return _kept_event(event, BUSY_KEEP, busy=True)
    if view == LIMITED:
        return _kept_event(event, LIMITED_KEEP, busy=False)
    return event, False


def redact(text: str, view: str) -> str:
    """The object in ``text`` (iCalendar text of one VCALENDAR: VEVENTs of one UID and their
    VTIMEZONEs) as a reader with ``view`` (:data:`FULL`, :data:`PRIVATE_HIDDEN`,
    :data:`LIMITED` or :data:`FREE_BUSY`) may see it, as iCalendar text (``str``, CRLF line
    ends, properties in ``icalendar``'s sorted order, so the same input gives the same output).

    ``text`` itself (the same object) is returned for :data:`FULL` and whenever the view would
    change nothing, so the ETag of such an object stays the same. ``ValueError`` for an unknown
    view or a text that is not a VCALENDAR; ``TypeError`` if ``text`` is not ``str``."""
    if view not in _ALL_VIEWS:
        raise ValueError(f"unknown redaction view {view!r}; expected one of "
                         + ", ".join(repr(v) for v in _ALL_VIEWS))
    calendar = _parse(text)
    if view == FULL:
        return text
    out = icalendar.Calendar()
    changed = False
    for name, value in calendar.items():
        if name.upper() in CALENDAR_KEEP:
            out[name] = value
        else:
            changed = True
    series_private = any(c.name == "VEVENT" and "RECURRENCE-ID" not in c
                         and event_is_private(c) for c in calendar.subcomponents)
    for component in calendar.subcomponents:
        if component.name == "VTIMEZONE":
            out.add_component(component)
        elif component.name == "VEVENT":
            shown, differs = _event_for_view(component, view, series_private)
            out.add_component(shown)
            changed = changed or differs
        else:
            changed = True
    if not changed:
        return text
    return out.to_ical().decode("utf-8")
