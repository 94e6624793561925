"""One VEVENT's own properties -> a Graph event body (times, text, people, flags, reminder),
and the kept entry that lets a client read back its own spelling (:mod:`.kept`).

Sources: RFC 5545 section 3.6.1 (VEVENT), 3.8 (properties); Graph resources/event.md,
attendee.md, location.md, itembody.md; api/event-update.md for the writable properties.
"""

from __future__ import annotations

import datetime as dt
import json

from . import fields, kept, lines
from .body import body_text
from .errors import UnsupportedObject
from .fields import occurrences, people
from .fields.status import IS_CANCELLED
from .fields.text import BODY
from .fields.times import (
    END,
    IS_ALL_DAY,
    ORIGINAL_END_TIME_ZONE,
    ORIGINAL_START_TIME_ZONE,
    START,
)
from .occurrences import occurrence_key
from .timezones import UTC, graph_zone, iana_from_graph, is_utc_name, tzid_of, zone

__all__ = ["EventParts", "event_parts", "occurrence_key"]


class EventParts:
    """The Graph view of one VEVENT. Build with :func:`event_parts`, then call
    :meth:`choose_zone` before :meth:`body`.

    ``start``/``end``: DTSTART and the end (dates for all-day events; aware datetimes, with
    floating times pinned to the floating zone). ``tz``: the zone wall times are read in.
    ``iana``: the IANA name of the client's zone when it has one. ``windows``/``series_zone``:
    the Windows zone sent to Graph and its IANA zone (after :meth:`choose_zone`).
    """

    def __init__(self, vevent, floating: str, owner: str | None, override: bool) -> None:
        self.vevent = vevent
        self.owner = owner
        self.override = override
        if "DTSTART" not in vevent:
            raise UnsupportedObject("VEVENT without DTSTART",
                                    "Graph events need a start (RFC 4791 4.1 requires it too)")
        start = vevent.decoded("DTSTART")
        self.all_day = not isinstance(start, dt.datetime)
        self.floating = not self.all_day and start.tzinfo is None
        if self.all_day:
            self.tz: dt.tzinfo = UTC
        elif self.floating:
            # A floating start with a zoned end (issue 1847 of Radicale: some clients write
            # DTEND;TZID only) is read in the end's zone; else in the floating zone.
            end_value = vevent.decoded("DTEND") if "DTEND" in vevent else None
            end_zone = getattr(end_value, "tzinfo", None)
            self.tz = end_zone if end_zone is not None else zone(floating)
            self.floating = end_zone is None
            start = start.replace(tzinfo=self.tz)
        else:
            self.tz = start.tzinfo
        label = tzid_of(self.tz) or "UTC"
        self.iana = "UTC" if is_utc_name(label) else iana_from_graph(label)
        if "DTEND" in vevent:
            end = vevent.decoded("DTEND")
        elif "DURATION" in vevent:
            end = start + vevent.decoded("DURATION")
        elif self.all_day:
            end = start + dt.timedelta(days=1)
        else:
            end = start
        if self.all_day:
            if isinstance(end, dt.datetime):
                raise UnsupportedObject("DTSTART as DATE with DTEND as DATE-TIME",
                                        "start and end must both be dates")
            if end <= start:
                end = start + dt.timedelta(days=1)
        else:
            if not isinstance(end, dt.datetime):
                raise UnsupportedObject("DTSTART as DATE-TIME with DTEND as DATE",
                                        "start and end must both be date-times")
            if end.tzinfo is None:
                end = end.replace(tzinfo=self.tz)
            if end < start:
                raise UnsupportedObject("DTEND before DTSTART",
                                        "an event cannot end before it starts")
        self.start, self.end = start, end
        self.windows = "UTC"
        self.series_zone = "UTC"
        people.read(self)
        # RFC 5545 3.8.1.11: STATUS:CANCELLED. On a master: Graph's read-only isCancelled
        # (``check_against``); on a RECURRENCE-ID override: that occurrence is cancelled,
        # which ``event_plan`` stores as a cancelled occurrence of the series.
        status = str(vevent.get("STATUS", "")).upper()
        self.cancelled = status == "CANCELLED"

    # -- time ------------------------------------------------------------------------------
    def wall(self, value) -> dt.datetime:
        """Naive wall time of a DTSTART-like value in :attr:`tz`."""
        if isinstance(value, dt.datetime):
            return value.astimezone(self.tz).replace(tzinfo=None) if value.tzinfo else value
        return dt.datetime.combine(value, dt.time())

    def aware(self, wall: dt.datetime) -> dt.datetime:
        """The instant of a naive wall time in :attr:`tz`."""
        return wall.replace(tzinfo=self.tz)

    def span(self) -> tuple[int, int]:
        """(start, end) of this VEVENT in POSIX seconds UTC (dates: midnight UTC)."""
        def seconds(value) -> int:
            if not isinstance(value, dt.datetime):
                value = dt.datetime.combine(value, dt.time(), tzinfo=UTC)
            return int(value.timestamp())
        return seconds(self.start), seconds(self.end)

    def local_date(self, value) -> str:
        """The date of an occurrence in the series zone, as Graph's cancelledOccurrences
        strings carry it."""
        if not isinstance(value, dt.datetime):
            return value.isoformat()
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(zone(self.series_zone)).date().isoformat()

    def choose_zone(self, walls: list[dt.datetime]) -> None:
        """Pick the Windows zone (see ``timezones.graph_zone``): it must give every
        occurrence wall time (``walls``; the start and end for a single event) the client's
        UTC offset. A single event in a zone no Windows zone matches is sent as UTC instants
        (exact); a series is refused."""
        if self.all_day:
            return
        probe = list(walls) or [self.wall(self.start), self.wall(self.end)]
        try:
            self.windows = graph_zone(self.tz, probe)
        except ValueError as exc:
            if len(walls) > 1:
                raise UnsupportedObject(f"VTIMEZONE {tzid_of(self.tz)}",
                                        f"{exc}, and a series recurs on the wall clock of "
                                        "its zone") from None
            self.windows = "UTC"
        self.series_zone = iana_from_graph(self.windows) or "UTC"

    # -- body ------------------------------------------------------------------------------
    def body(self) -> dict:
        """The Graph ``event`` body for this VEVENT (no recurrence, no extended properties),
        row by row of the mapping table (``fields.to_graph``). Every mapped field is
        written, so a PATCH also clears what the client removed."""
        return fields.to_graph(self)

    # -- kept ------------------------------------------------------------------------------
    def simulate(self, body: dict, cancelled_dates=(), original: str | None = None) -> dict:
        """The event as Graph will return it for ``body`` (the fields the rendering reads)."""
        event = json.loads(json.dumps(body))
        event.pop("singleValueExtendedProperties", None)
        # The storage reads bodies as text: Graph's text rendering of an HTML body.
        event[BODY] = {"contentType": "text", "content": body_text(body.get(BODY))}
        event[ORIGINAL_START_TIME_ZONE] = body[START]["timeZone"]
        event[ORIGINAL_END_TIME_ZONE] = body[END]["timeZone"]
        people.simulate(self, event)
        event[IS_CANCELLED] = self.cancelled
        occurrences.simulate(event, cancelled_dates, original)
        return event

    def client_items(self) -> list[tuple[str, str]]:
        """The client's VEVENT as ``(group, text)`` items (see :mod:`.lines`)."""
        items = []
        alarm = 0
        for group, text in lines.property_items(self.vevent):
            if group == "VALARM":
                group = "VALARM" if alarm == self.alarm_index else lines.KEPT
                alarm += 1
            elif group.startswith("ATTENDEE:") and group[9:] == self.owner_line:
                group = "OWNER"
            items.append((group, text))
        return items

    def kept_entry(self, body: dict, cancelled_dates=(), original: str | None = None,
                   series: EventParts | None = None, shown=()) -> dict:
        """The kept entry for this VEVENT written as ``body`` (see :func:`kept.build`).
        ``cancelled_dates``: the series' cancelled dates (``YYYY-MM-DD`` in its zone);
        ``shown``: occurrence keys of cancelled overrides rendered as overrides rather than
        EXDATEs (see ``fields.occurrences.without_exdates``)."""
        event = self.simulate(body, cancelled_dates, original)
        ctx = fields.Context(uid=str(self.vevent.get("UID", "")),
                      zone=(series or self).series_zone, owner=self.owner)
        master = None
        if original is not None:
            master = {IS_ALL_DAY: (series or self).all_day}
        derived, _, _ = fields.derive(event, ctx, master)
        derived = occurrences.without_exdates(derived, shown, self.all_day, ctx.zone)
        return kept.build(self.client_items(), derived, event)


def event_parts(vevent, floating: str, owner: str | None, override: bool = False) -> EventParts:
    """:class:`EventParts` of a VEVENT; ``floating`` is the IANA zone for floating times,
    ``owner`` the mailbox address (lower case) or None. Raises :class:`UnsupportedObject`."""
    return EventParts(vevent, floating, owner, override)
