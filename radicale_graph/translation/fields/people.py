"""ORGANIZER, ATTENDEE (CN, ROLE, CUTYPE, PARTSTAT, RSVP) ⇄ ``organizer``, ``attendees``,
``responseRequested``, ``responseStatus``, ``isOrganizer``: ATTENDEE's mapping in both
directions.

RFC 5545 3.8.4.1 (ATTENDEE), 3.8.4.3 (ORGANIZER), 3.2.2 (CN), 3.2.3 (CUTYPE), 3.2.12
(PARTSTAT), 3.2.16 (ROLE), 3.2.17 (RSVP); Graph resources/event.md, attendee.md,
responsestatus.md; api/user-post-events.md (Graph makes the mailbox owner the organizer of
every event it creates). The value tables are :mod:`..values`.

* → Graph: one ``attendees`` entry per ATTENDEE (``emailAddress`` from the address and CN,
  ``type`` from CUTYPE/ROLE, ``status.response`` from PARTSTAT) except the mailbox owner's
  own line; ``responseRequested`` = some attendee has RSVP=TRUE. ORGANIZER is not written.
* → iCalendar: ORGANIZER when there are attendees or the owner did not organize; one
  ATTENDEE per entry (ROLE, CUTYPE=ROOM/RESOURCE, PARTSTAT, RSVP=TRUE when requested); the
  owner's line (group ``OWNER``) carries ``responseStatus.response`` when someone else
  organizes.
"""

from __future__ import annotations

import icalendar

from .. import lines
from ..errors import UnsupportedObject
from ..values import (
    PARTSTAT_TO_RESPONSE,
    RESOURCE_CUTYPES,
    RESPONSE_TO_PARTSTAT,
    ROLE_TO_TYPE,
    TYPE_TO_ROLE,
    enum,
)
from .base import Context, Field, Rendering

ORGANIZER = "organizer"
ATTENDEES = "attendees"
RESPONSE_REQUESTED = "responseRequested"
RESPONSE_STATUS = "responseStatus"
IS_ORGANIZER = "isOrganizer"


# -- iCalendar -> Graph ------------------------------------------------------------------------


def read(parts) -> None:
    """Read ORGANIZER and ATTENDEE of ``parts.vevent`` for mailbox ``parts.owner`` (lower
    case, or None) into ``parts``: ``organizer`` (address or None), ``attendees`` (the
    ATTENDEE properties), ``owner_partstat``/``owner_line`` (the owner attends someone
    else's meeting), ``self_line`` (the organizing owner also lists themself) and
    ``detached`` (a copy of a meeting the owner neither organizes nor attends: stored
    without attendees, so Graph invites nobody; its lines are kept for CalDAV clients)."""
    vevent, owner = parts.vevent, parts.owner
    organizer = vevent.get("ORGANIZER")
    parts.organizer = lines.address_of(organizer) if organizer is not None else None
    found = vevent.get("ATTENDEE")
    parts.attendees = [] if found is None else found if isinstance(found, list) else [found]
    addresses = [lines.address_of(a) for a in parts.attendees]
    parts.owner_partstat = None
    parts.owner_line = None
    parts.self_line = None
    parts.detached = False
    if owner and parts.organizer and parts.organizer != owner:
        if owner in addresses:
            prop = parts.attendees[addresses.index(owner)]
            parts.owner_partstat = str(prop.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
            parts.owner_line = owner
        elif any(a != parts.organizer for a in addresses):
            parts.detached = True
    elif owner and parts.organizer == owner and owner in addresses:
        parts.self_line = owner


def attendee_bodies(parts) -> list[dict]:
    """Graph ``attendees`` for the VEVENT read by :func:`read`. Raises
    :class:`UnsupportedObject` for an ATTENDEE without an email address."""
    if parts.detached:
        return []
    out = []
    for prop in parts.attendees:
        address = lines.address_of(prop)
        if address in (parts.owner_line, parts.self_line):
            continue
        raw = str(prop).strip()
        if raw.lower().startswith("mailto:"):
            raw = raw[7:]
        if "@" not in raw or ":" in raw.split("@")[0]:
            raise UnsupportedObject(f"ATTENDEE {prop}", "Graph's attendees are email "
                                    "recipients; this one has no email address")
        params = prop.params
        cutype = str(params.get("CUTYPE", "INDIVIDUAL")).upper()
        role = str(params.get("ROLE", "REQ-PARTICIPANT")).upper()
        kind = "resource" if cutype in RESOURCE_CUTYPES else ROLE_TO_TYPE.get(role, "required")
        email = {"address": raw}
        if params.get("CN"):
            email["name"] = str(params["CN"])
        partstat = str(params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        out.append({"emailAddress": email, "type": kind,
                    "status": {"response": PARTSTAT_TO_RESPONSE.get(partstat, "none")}})
    return out


def response_requested(parts) -> bool | None:
    """``responseRequested``: some attendee (the owner aside) has RSVP=TRUE (RFC 5545
    default FALSE); None when no attendee is written."""
    others = [a for a in parts.attendees
              if lines.address_of(a) not in (parts.owner_line, parts.self_line)]
    if not others or parts.detached:
        return None
    return any(str(a.params.get("RSVP", "FALSE")).upper() == "TRUE" for a in others)


def to_graph(parts, body: dict) -> None:
    """``attendees`` and (with attendees) ``responseRequested``."""
    body[ATTENDEES] = attendee_bodies(parts)
    requested = response_requested(parts)
    if requested is not None:
        body[RESPONSE_REQUESTED] = requested


def simulate(parts, event: dict) -> None:
    """What Graph returns for the people of a body written from ``parts``: ``isOrganizer``,
    ``organizer`` (the owner, or the ORGANIZER the owner attends) and ``responseStatus``."""
    attending = parts.owner_line is not None
    event[IS_ORGANIZER] = not attending
    address = parts.organizer if attending else (parts.owner or parts.organizer or "")
    event[ORGANIZER] = {"emailAddress": {"address": address}}
    event[RESPONSE_STATUS] = {"response": PARTSTAT_TO_RESPONSE.get(
        parts.owner_partstat or "", "none") if attending else "organizer"}


# -- Graph -> iCalendar ------------------------------------------------------------------------


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """ORGANIZER and the ATTENDEE lines (groups ``ATTENDEE:<address>``, ``OWNER``)."""
    attendees = list(event.get(ATTENDEES) or [])
    organizer = ((event.get(ORGANIZER) or {}).get("emailAddress")) or {}
    organizer_address = str(organizer.get("address") or "").lower()
    owner_attends = bool(ctx.owner) and event.get(IS_ORGANIZER) is False and \
        organizer_address != ctx.owner
    if organizer.get("address") and (attendees or event.get(IS_ORGANIZER) is False):
        out.add("ORGANIZER", cal_address(organizer))
    requested = event.get(RESPONSE_REQUESTED, True) is not False
    listed = False
    for attendee in attendees:
        email = attendee.get("emailAddress") or {}
        address = str(email.get("address") or "").lower()
        response = ((attendee.get("status") or {}).get("response")) or "none"
        if owner_attends and address == ctx.owner:
            listed = True
            response = (event.get(RESPONSE_STATUS) or {}).get("response") or "none"
        mine = owner_attends and address == ctx.owner
        out.add("ATTENDEE", attendee_address(attendee, response, requested, ctx.rooms),
                group="OWNER" if mine else "ATTENDEE:" + address)
    if owner_attends and not listed:
        response = (event.get(RESPONSE_STATUS) or {}).get("response") or "none"
        owner = {"emailAddress": {"address": ctx.owner}, "type": "required"}
        out.add("ATTENDEE", attendee_address(owner, response, requested, ctx.rooms),
                group="OWNER")


def cal_address(email: dict) -> icalendar.vCalAddress:
    """A ``mailto:`` cal-address with CN from a Graph ``emailAddress``."""
    value = icalendar.vCalAddress(f"mailto:{email['address']}")
    if email.get("name") and str(email["name"]).lower() != str(email["address"]).lower():
        value.params["CN"] = email["name"]
    return value


def attendee_address(attendee: dict, response: str, requested: bool,
                     rooms: frozenset[str]) -> icalendar.vCalAddress:
    """One ATTENDEE value with ROLE, CUTYPE (ROOM for ``rooms``), PARTSTAT and RSVP."""
    email = attendee.get("emailAddress") or {}
    value = cal_address(email)
    kind = enum(attendee.get("type"), TYPE_TO_ROLE, "required")
    if kind == "resource":
        address = str(email.get("address", "")).lower()
        value.params["CUTYPE"] = "ROOM" if address in rooms else "RESOURCE"
    value.params["ROLE"] = TYPE_TO_ROLE[kind]
    value.params["PARTSTAT"] = RESPONSE_TO_PARTSTAT.get(
        enum(response, RESPONSE_TO_PARTSTAT, "none"), "NEEDS-ACTION")
    if requested and kind != "resource":
        value.params["RSVP"] = "TRUE"
    return value


# -- kept fingerprints and occurrence comparison -----------------------------------------------


def canonical(group: str, event: dict):
    """ORGANIZER: the shown organizer; ``ATTENDEE:<address>``: that entry's type, response
    and whether replies are requested; OWNER: the owner's response."""
    if group == "ORGANIZER":
        organizer = (event.get(ORGANIZER) or {}).get("emailAddress") or {}
        shown = bool(event.get(ATTENDEES)) or event.get(IS_ORGANIZER) is False
        return [str(organizer.get("address") or "").lower() if shown else None, shown]
    if group == "OWNER":
        return [(event.get(RESPONSE_STATUS) or {}).get("response") or "none",
                event.get(RESPONSE_REQUESTED, True) is not False]
    address = group[len("ATTENDEE:"):]
    for attendee in event.get(ATTENDEES) or []:
        email = attendee.get("emailAddress") or {}
        if str(email.get("address") or "").lower() == address:
            response = ((attendee.get("status") or {}).get("response")) or "none"
            return [str(attendee.get("type") or "required").lower(), response,
                    event.get(RESPONSE_REQUESTED, True) is not False]
    return None


def same(name: str, event: dict):
    """``attendees`` as sorted (address, type, response); others as is."""
    if name == ATTENDEES:
        return sorted(
            (str((a.get("emailAddress") or {}).get("address") or "").lower(),
             str(a.get("type") or "required").lower(),
             str((a.get("status") or {}).get("response") or "none"))
            for a in event.get(ATTENDEES) or [])
    value = event.get(name)
    return value.lower() if isinstance(value, str) else value


PEOPLE = Field("people", (ORGANIZER, ATTENDEES, IS_ORGANIZER, RESPONSE_REQUESTED,
                          RESPONSE_STATUS),
               groups=("ORGANIZER", "ATTENDEE:", "OWNER"), to_graph=to_graph,
               to_ical=to_ical, canonical=canonical,
               occurrence=(ATTENDEES, RESPONSE_REQUESTED), same=same)
