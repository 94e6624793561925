"""The demo generator: fill one mailbox calendar with many realistic events, reproducibly.

``fill(store, mailbox, count, seed=...)`` creates ``count`` Graph items (single events and
series masters: one CalDAV resource each) "as Outlook" through
:meth:`~radicale_graph.emulator.store.Store.create_event`, so they carry no gateway-kept
properties, as events made in Outlook do. The mix, drawn from ``random.Random(seed)``:

- about 80 % single events: timed (30 to 120 minutes, 07:30 to 18:00 local) in one of four
  Windows zones, or all-day (one in ten); some with attendees, a location, a body, categories,
  a reminder; ``showAs``/``sensitivity``/``importance`` varied;
- about 20 % series (resources/recurrencepattern.md, resources/recurrencerange.md): weekly
  (half; one or two weekdays, interval 1 or 2), daily (a quarter; interval 1, weekdays only or
  every day) and monthly (a quarter; ``absoluteMonthly`` or ``relativeMonthly``), ending by
  date, after a number of occurrences, or (one in ten) never; about a third get one or two
  modified occurrences (moved an hour later and retitled: exceptions) and a quarter get a
  cancelled occurrence.

Starts are spread uniformly over ``years`` (default 2) centred on ``today``. The same seed,
count and ``today`` give the same events (Graph ids, changeKeys and iCalUIds stay random as in
Exchange). Nothing here imports the gateway's ``translation``, ``graph`` or ``storage``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from . import ids, series, times

ZONES = ("Pacific Standard Time", "W. Europe Standard Time", "Eastern Standard Time", "UTC")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SUBJECTS = ("Team sync", "1:1", "Design review", "Customer call", "Sprint planning",
            "Budget review", "Lunch", "Interview", "Training", "All hands", "Retrospective",
            "Vendor meeting", "Board prep", "Standup", "Workshop", "Code review", "Demo",
            "Offsite planning", "Quarterly review", "Coffee chat")
TOPICS = ("Falcon", "Atlas", "Q3 numbers", "hiring", "the launch", "support backlog",
          "security audit", "pricing", "roadmap", "onboarding", "migration", "partners")
PEOPLE = (("Bob Brown", "bob@contoso.com"), ("Samantha Booth", "samantha.booth@fabrikam.com"),
          ("Dana Lee", "dana.lee@contoso.com"), ("Eve Martin", "eve.martin@contoso.com"),
          ("Frank Ito", "frank.ito@northwind.example"), ("Grace Kim", "grace.kim@contoso.com"))
ROOMS = (("Adams Conference Room", "room-adams@contoso.com"),
         ("Baker Huddle Room", "room-baker@contoso.com"))
CATEGORIES = ("Blue category", "Green category", "Red category", "Yellow category")


@dataclass
class Generated:
    """What :func:`fill` made: Graph ids of the single events and of the series masters,
    and the number of exceptions and cancelled occurrences written."""

    singles: list[str] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    exceptions: int = 0
    cancellations: int = 0

    @property
    def ids(self) -> list[str]:
        """Every created item id (singles, then masters)."""
        return self.singles + self.series


def _dtz(value: dt.datetime, zone: str) -> dict:
    """Graph ``dateTimeTimeZone`` for a naive wall time in ``zone``."""
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone}


def _common(rng: random.Random, number: int) -> dict:
    subject = f"{rng.choice(SUBJECTS)}: {rng.choice(TOPICS)} #{number}"
    body: dict = {"subject": subject,
                  "showAs": rng.choices(("busy", "tentative", "free", "oof"), (8, 2, 1, 1))[0],
                  "sensitivity": rng.choices(("normal", "private"), (9, 1))[0],
                  "importance": rng.choices(("normal", "high", "low"), (8, 1, 1))[0],
                  "isReminderOn": rng.random() < 0.7,
                  "reminderMinutesBeforeStart": rng.choice((5, 10, 15, 30))}
    if rng.random() < 0.5:
        body["body"] = {"contentType": "text",
                        "content": f"Agenda for {subject}.\nBring notes on {rng.choice(TOPICS)}."}
    if rng.random() < 0.35:
        people = rng.sample(PEOPLE, rng.randint(1, 3))
        body["attendees"] = [{"emailAddress": {"name": n, "address": a},
                              "type": rng.choice(("required", "required", "optional"))}
                             for n, a in people]
        if rng.random() < 0.3:
            name, address = rng.choice(ROOMS)
            body["location"] = {"displayName": name, "locationEmailAddress": address,
                                "locationType": "conferenceRoom"}
            body["attendees"].append({"emailAddress": {"name": name, "address": address},
                                      "type": "resource"})
    elif rng.random() < 0.2:
        body["location"] = {"displayName": rng.choice(("Cafeteria", "Building 4", "Online"))}
    if rng.random() < 0.15:
        body["categories"] = [rng.choice(CATEGORIES)]
    return body


def _timed(rng: random.Random, day: dt.date) -> tuple[dt.datetime, dt.datetime, str]:
    start = dt.datetime.combine(day, dt.time(7, 30)) + dt.timedelta(minutes=30 * rng.randint(0,
                                                                                           20))
    return start, start + dt.timedelta(minutes=rng.choice((30, 30, 60, 60, 90, 120))), \
        rng.choices(ZONES, (4, 3, 2, 1))[0]


def _single(rng: random.Random, day: dt.date, number: int) -> dict:
    body = _common(rng, number)
    if rng.random() < 0.1:
        zone = rng.choice(ZONES)
        body.update(isAllDay=True, showAs=rng.choice(("free", "oof")),
                    start=_dtz(dt.datetime.combine(day, dt.time()), zone),
                    end=_dtz(dt.datetime.combine(day, dt.time()) +
                             dt.timedelta(days=rng.choice((1, 1, 1, 2, 3))), zone))
        body.pop("attendees", None)
        return body
    start, end, zone = _timed(rng, day)
    body.update(start=_dtz(start, zone), end=_dtz(end, zone))
    return body


def _recurrence(rng: random.Random, day: dt.date) -> dict:
    kind = rng.choices(("weekly", "daily", "monthly"), (2, 1, 1))[0]
    if kind == "weekly":
        days = sorted({WEEKDAYS[day.weekday()], *rng.sample(WEEKDAYS[:5], rng.randint(0, 1))},
                      key=WEEKDAYS.index)
        pattern = {"type": "weekly", "interval": rng.choice((1, 1, 2)), "daysOfWeek": days,
                   "firstDayOfWeek": "sunday"}
        numbered = rng.randint(6, 40)
    elif kind == "daily":
        if rng.random() < 0.5:
            pattern = {"type": "weekly", "interval": 1, "daysOfWeek": list(WEEKDAYS[:5]),
                       "firstDayOfWeek": "sunday"}
        else:
            pattern = {"type": "daily", "interval": 1}
        numbered = rng.randint(5, 30)
    elif rng.random() < 0.5:
        pattern = {"type": "absoluteMonthly", "interval": 1, "dayOfMonth": day.day}
        numbered = rng.randint(3, 18)
    else:
        index = ("first", "second", "third", "fourth", "last")[min((day.day - 1) // 7, 3)]
        pattern = {"type": "relativeMonthly", "interval": 1,
                   "daysOfWeek": [WEEKDAYS[day.weekday()]], "index": index}
        numbered = rng.randint(3, 18)
    end_kind = rng.choices(("numbered", "endDate", "noEnd"), (5, 4, 1))[0]
    rng_range: dict = {"type": end_kind, "startDate": day.isoformat()}
    if end_kind == "numbered":
        rng_range["numberOfOccurrences"] = numbered
    elif end_kind == "endDate":
        rng_range["endDate"] = (day + dt.timedelta(days=rng.randint(30, 240))).isoformat()
    return {"pattern": pattern, "range": rng_range}


def _series_body(rng: random.Random, day: dt.date, number: int) -> dict:
    body = _common(rng, number)
    recurrence = _recurrence(rng, day)
    start, end, zone = _timed(rng, day)
    if recurrence["pattern"]["type"] == "weekly" and len(recurrence["pattern"]["daysOfWeek"]) > 1:
        # The first occurrence must match the pattern: start on its first listed weekday on
        # or after ``day`` (Graph moves it there; keeping it explicit keeps the data exact).
        wanted = {WEEKDAYS.index(d) for d in recurrence["pattern"]["daysOfWeek"]}
        while start.weekday() not in wanted:
            start += dt.timedelta(days=1)
            end += dt.timedelta(days=1)
        recurrence["range"]["startDate"] = start.date().isoformat()
    body.update(start=_dtz(start, zone), end=_dtz(end, zone), recurrence=recurrence)
    return body


def _edit_series(store, mailbox: str, master_id: str, rng: random.Random, made: Generated,
                 ) -> None:
    """Give a series some exceptions and a cancellation (occurrences after the first)."""
    box = store.mailbox(mailbox)
    record = box.events[master_id]
    first = times.from_dtz(record.data["start"])
    starts = series.expand_starts(record.data, first, first + dt.timedelta(days=400))[1:]
    if len(starts) < 3:
        return
    chosen = rng.sample(starts, min(len(starts), 3))
    if rng.random() < 0.33:
        for original in chosen[:rng.randint(1, 2)]:
            zone = record.data["start"]["timeZone"]
            local = original.astimezone(times.zoneinfo_for(zone)).replace(tzinfo=None)
            length = times.from_dtz(record.data["end"]) - first
            moved = local + dt.timedelta(hours=1)
            store.update_event(mailbox, ids.occurrence_id(master_id, original), {
                "subject": f"{record.data['subject']} (moved)",
                "start": _dtz(moved, zone), "end": _dtz(moved + length, zone)})
            made.exceptions += 1
        chosen = chosen[2:]
    if chosen and rng.random() < 0.25:
        store.delete_event(mailbox, ids.occurrence_id(master_id, chosen[-1]))
        made.cancellations += 1


def fill(store, mailbox: str, count: int, *, seed: int = 0, today: dt.date | None = None,
         calendar_id: str | None = None, years: float = 2.0,
         series_share: float = 0.2) -> Generated:
    """Create ``count`` items in ``mailbox``'s calendar ``calendar_id`` (None: the default).

    ``store``: the emulator's :class:`~radicale_graph.emulator.store.Store`; ``mailbox``: a
    UPN it serves. Item starts are uniformly spread over ``years`` years (days) centred on
    ``today`` (a local date; default: the current date); ``series_share`` is the fraction of
    items that are series masters. Deterministic for a given ``seed``, ``count`` and ``today``
    (ids aside). Returns the ids created. Raises the store's ``GraphError`` for an unknown
    mailbox or calendar.
    """
    rng = random.Random(seed)
    centre = today or dt.date.today()
    half = int(365 * years / 2)
    made = Generated()
    for number in range(count):
        day = centre + dt.timedelta(days=rng.randint(-half, half))
        if rng.random() < series_share:
            event = store.create_event(mailbox, calendar_id, _series_body(rng, day, number))
            made.series.append(event["id"])
            _edit_series(store, mailbox, event["id"], rng, made)
        else:
            event = store.create_event(mailbox, calendar_id, _single(rng, day, number))
            made.singles.append(event["id"])
    return made
