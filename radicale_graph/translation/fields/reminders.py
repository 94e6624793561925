"""VALARM ⇄ ``isReminderOn``, ``reminderMinutesBeforeStart``.

RFC 5545 3.6.6 (VALARM), 3.8.6.3 (TRIGGER); Graph resources/event.md. Graph holds one
reminder: the first alarm that alerts at or before the start by whole minutes (TRIGGER
relative to START, or absolute; ACTION DISPLAY, AUDIO or EMAIL). Other alarms are kept for
CalDAV clients (``EventParts.client_items``).
"""

from __future__ import annotations

import datetime as dt

import icalendar

from .. import lines
from ..timezones import UTC
from .base import Context, Field, Rendering

IS_REMINDER_ON = "isReminderOn"
REMINDER_MINUTES_BEFORE_START = "reminderMinutesBeforeStart"
ALARM_ACTIONS = {"DISPLAY", "AUDIO", "EMAIL"}


def reminder(event, start) -> tuple[int | None, dict]:
    """The index (among the VEVENT's VALARMs) of the alarm Graph's one reminder holds, and
    the reminder fields; ``start`` is DTSTART (aware, or a date)."""
    for index, alarm in enumerate(a for a in event.subcomponents if a.name == "VALARM"):
        if str(alarm.get("ACTION", "")).upper() not in ALARM_ACTIONS or "TRIGGER" not in alarm:
            continue
        trigger = alarm["TRIGGER"]
        value = alarm.decoded("TRIGGER")
        if isinstance(value, dt.timedelta):
            if str(trigger.params.get("RELATED", "START")).upper() != "START":
                continue
            before = -value
        elif isinstance(value, dt.datetime) and isinstance(start, dt.datetime):
            at = value if value.tzinfo else value.replace(tzinfo=UTC)
            before = start - at
        else:
            continue
        seconds = before.total_seconds()
        if seconds < 0 or seconds % 60 or seconds / 60 > 2**31 - 1:
            continue
        return index, {IS_REMINDER_ON: True,
                       REMINDER_MINUTES_BEFORE_START: int(seconds // 60)}
    return None, {IS_REMINDER_ON: False}


def to_graph(parts, body: dict) -> None:
    """The reminder fields; records the chosen alarm as ``parts.alarm_index``."""
    parts.alarm_index, found = reminder(parts.vevent, parts.start)
    body.update(found)


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """One DISPLAY alarm ``reminderMinutesBeforeStart`` before the start."""
    if event.get(IS_REMINDER_ON):
        alarm = icalendar.Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", "Reminder")
        minutes = int(event.get(REMINDER_MINUTES_BEFORE_START) or 0)
        alarm.add("TRIGGER", -dt.timedelta(minutes=minutes))
        out.append(("VALARM", lines.component_text(alarm)))


def canonical(group: str, event: dict) -> list:
    """Whether the reminder is on, and its minutes when it is."""
    on = bool(event.get(IS_REMINDER_ON))
    return [on, int(event.get(REMINDER_MINUTES_BEFORE_START) or 0) if on else None]


VALARM = Field("VALARM", (IS_REMINDER_ON, REMINDER_MINUTES_BEFORE_START), groups=("VALARM",),
               to_graph=to_graph, to_ical=to_ical, canonical=canonical,
               occurrence=(IS_REMINDER_ON, REMINDER_MINUTES_BEFORE_START))
