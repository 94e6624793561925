"""Identity of one occurrence of a series, in both models, in one place.

An occurrence is named three ways:

* in iCalendar by its original start: RECURRENCE-ID of an override, a value of EXDATE
  (RFC 5545 sections 3.8.4.4 and 3.8.5.1): aware, floating (read in the series' zone) or a DATE;
* in Graph by ``originalStart`` of an exception or occurrence instance (an ``Edm.DateTimeOffset``
  in UTC; resources/event.md) and by the ``OID.<master id>.<date>`` strings of the master's
  ``cancelledOccurrences``, whose date is the occurrence's date in the series' zone
  (resources/event.md, "cancelledOccurrences");
* by the gateway (translation and storage alike) by its **occurrence key**: ``YYYY-MM-DD`` for
  all-day series, else its original start as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ``.

Translation keys EXDATEs and RECURRENCE-ID overrides with :func:`occurrence_key`; the storage
keys Graph's instances with :func:`instance_key`, builds ``cancelledOccurrences`` entries with
:func:`oid` and reads them back with :func:`cancelled_keys`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from .errors import UnsupportedObject
from .timezones import UTC, parse_graph_datetime, parse_graph_offset_datetime, zone

# Graph's names (resources/event.md).
ORIGINAL_START = "originalStart"
CANCELLED_OCCURRENCES = "cancelledOccurrences"
KEY_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def occurrence_key(value: dt.datetime | dt.date, zone_name: str, all_day: bool) -> str:
    """Stable key of one occurrence: ``YYYY-MM-DD`` for all-day series, else its original
    start as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ``.

    ``value`` is a RECURRENCE-ID/EXDATE value (aware, floating = wall time in ``zone_name``
    (IANA), or a date) or Graph's ``originalStart`` (aware, UTC). Raises
    :class:`UnsupportedObject` for a DATE in a timed series (RFC 5545 3.8.4.4: RECURRENCE-ID
    has DTSTART's value type)."""
    if all_day:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(zone(zone_name))
            return value.date().isoformat()
        return value.isoformat()
    if not isinstance(value, dt.datetime):
        raise UnsupportedObject("RECURRENCE-ID or EXDATE with VALUE=DATE",
                                "the series has timed occurrences")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(zone_name))
    return value.astimezone(UTC).strftime(KEY_FORMAT)


def key_instant(key: str) -> dt.datetime:
    """The instant of an occurrence key (aware, UTC; an all-day key: midnight UTC of its
    date). Raises ``ValueError`` for a string that is no key."""
    if "T" in key:
        return dt.datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)
    return dt.datetime.combine(dt.date.fromisoformat(key), dt.time(), tzinfo=UTC)


def original_start(instance: dict) -> dt.datetime:
    """Graph's ``originalStart`` of an exception or occurrence instance (aware, UTC).
    Raises ``KeyError`` when absent, ``ValueError`` when unreadable."""
    return parse_graph_offset_datetime(instance[ORIGINAL_START])


def instance_key(instance: dict, zone_name: str, all_day: bool) -> str:
    """The occurrence key of a Graph instance (its ``originalStart``) in a series written in
    ``zone_name`` (IANA), all-day or not."""
    return occurrence_key(original_start(instance), zone_name, all_day)


def key_as_original_start(key: str) -> str:
    """Graph's ``originalStart`` (ISO 8601 UTC) of the occurrence at ``key``."""
    return key if "T" in key else f"{key}T00:00:00Z"


def recurrence_id(instance: dict, zone_name: str, all_day: bool) -> dt.datetime | dt.date:
    """The RECURRENCE-ID value of a Graph instance: its ``originalStart`` in ``zone_name``
    (IANA; aware), or that date for an all-day series."""
    original = original_start(instance).astimezone(zone(zone_name))
    return original.date() if all_day else original


def oid(master_id: str, key: str, zone_name: str) -> str:
    """Graph's ``cancelledOccurrences`` entry for the occurrence at ``key``:
    ``OID.<master id>.<date>``, the date in the series' zone ``zone_name`` (IANA)."""
    day = key if "T" not in key else key_instant(key).astimezone(zone(zone_name)).date()
    return f"OID.{master_id}.{day}"


def oid_date(text: str) -> dt.date:
    """The date of one ``cancelledOccurrences`` entry (``OID.<master id>.<date>``).
    Raises ``ValueError`` when it carries none."""
    return dt.date.fromisoformat(str(text).rsplit(".", 1)[-1][:10])


def cancelled_dates(master: dict) -> list[dt.date]:
    """The dates (in the series' zone) of a master's ``cancelledOccurrences``, in Graph's
    order."""
    return [oid_date(text) for text in master.get(CANCELLED_OCCURRENCES) or []]


def cancelled_keys(master: dict, zone_name: str, all_day: bool) -> Iterator[str]:
    """Occurrence keys of a master's ``cancelledOccurrences``: each date at the series'
    time of day (the master's ``start`` read in ``zone_name``, IANA)."""
    start = parse_graph_datetime(master["start"]).astimezone(zone(zone_name))
    for day in cancelled_dates(master):
        if all_day:
            yield day.isoformat()
        else:
            local = dt.datetime.combine(day, start.time()).replace(tzinfo=start.tzinfo)
            yield occurrence_key(local, zone_name, all_day)


def occurrence_value(day: dt.date, dtstart: dt.datetime | dt.date) -> dt.datetime | dt.date:
    """The EXDATE value of the occurrence on ``day`` of a series starting at ``dtstart``:
    that date at DTSTART's time of day in its zone, or the date for an all-day series."""
    if isinstance(dtstart, dt.datetime):
        return dt.datetime.combine(day, dtstart.replace(tzinfo=None).time()).replace(
            tzinfo=dtstart.tzinfo)
    return day
