"""Time zones: Windows names (Graph) and IANA names (iCalendar), and Graph's dateTimeTimeZone.

The Windows <-> IANA tables are CLDR's ``windowsZones.xml`` as shipped by maintained packages:
``icalendar.timezone.windows_to_olson`` (Windows -> primary IANA zone) and
``tzlocal.windows_tz`` (IANA -> Windows, every CLDR territory zone).
Graph's ``dateTimeTimeZone`` is documented at resources/datetimetimezone.md: ``dateTime`` is a
local wall-clock time without offset, ``timeZone`` a Windows or IANA name.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from tzlocal.windows_tz import tz_win

UTC = dt.UTC
GRAPH_UTC_NAMES = {"utc", "tzone://microsoft/utc", "etc/utc", "z", "gmt", "etc/gmt"}
CUSTOM_ZONE = "tzone://Microsoft/Custom"

# Probe instants used to recognise a zone by its rules (offsets), spread over two years and
# around the usual DST transition weeks of both hemispheres.
_PROBES = [
    dt.datetime(year, month, day, hour, tzinfo=UTC)
    for year in (2025, 2026)
    for month in range(1, 13)
    for day in (1, 8, 15, 22, 29) if not (month == 2 and day == 29)
    for hour in (2, 14)
]


@lru_cache(maxsize=512)
def iana_from_graph(name: str | None) -> str | None:
    """IANA zone name for a Graph ``timeZone`` / ``originalStartTimeZone`` value.

    Windows names map through CLDR; IANA names pass through; UTC spellings give ``"UTC"``.
    Returns ``None`` for ``tzone://Microsoft/Custom``, empty or unknown names (the caller then
    uses UTC instants).
    """
    if not name:
        return None
    if name.lower() in GRAPH_UTC_NAMES:
        return "UTC"
    if name in WINDOWS_TO_OLSON:
        olson = WINDOWS_TO_OLSON[name]
        return "UTC" if olson in ("Etc/UTC", "Etc/GMT") else olson
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@lru_cache(maxsize=512)
def graph_from_iana(name: str) -> str:
    """Windows zone name Graph stores for an IANA zone (CLDR); ``"UTC"`` for UTC.

    Raises ``KeyError`` if CLDR has no Windows zone for ``name``.
    """
    if name.lower() in GRAPH_UTC_NAMES:
        return "UTC"
    return tz_win[name]


def tzinfo_name(tzinfo: dt.tzinfo | None) -> str | None:
    """IANA name for a tzinfo from a parsed iCalendar value, or ``None`` if floating.

    ZoneInfo zones give their key; UTC gives ``"UTC"``; a zone built from a client's custom
    VTIMEZONE (Outlook's or Apple's own TZIDs) is matched by its rules: its UTC offsets at a
    set of probe instants must equal those of an IANA zone CLDR knows. Raises ``ValueError`` if
    no IANA zone has the same rules.
    """
    if tzinfo is None:
        return None
    key = getattr(tzinfo, "key", None) or getattr(tzinfo, "zone", None)
    if key:
        mapped = iana_from_graph(key)
        if mapped:
            return mapped
    if tzinfo is UTC or tzinfo.utcoffset(None) == dt.timedelta(0) and _is_fixed(tzinfo, 0):
        return "UTC"
    name = getattr(tzinfo, "tzid", None) or str(tzinfo)
    mapped = iana_from_graph(name)
    if mapped:
        return mapped
    return match_by_rules(tzinfo, name)


def _is_fixed(tzinfo: dt.tzinfo, seconds: int) -> bool:
    return all(p.astimezone(tzinfo).utcoffset() == dt.timedelta(seconds=seconds)
               for p in _PROBES[::6])


def _signature(tzinfo: dt.tzinfo) -> tuple:
    return tuple(p.astimezone(tzinfo).utcoffset() for p in _PROBES)


@lru_cache(maxsize=1)
def _signatures() -> dict[tuple, list[tuple[str, str]]]:
    table: dict[tuple, list[tuple[str, str]]] = {}
    for windows_name, iana in sorted(WINDOWS_TO_OLSON.items()):
        try:
            table.setdefault(_signature(ZoneInfo(iana)), []).append((windows_name, iana))
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return table


def match_by_rules(tzinfo: dt.tzinfo, label: str = "") -> str:
    """IANA zone (a CLDR primary zone) whose offsets equal ``tzinfo``'s at every probe instant.

    Several zones can share today's rules; the one whose city or Windows name appears in
    ``label`` (the client's TZID, e.g. Outlook's "(UTC+01:00) Amsterdam, Berlin, Bern, Rome")
    is preferred. Raises ``ValueError`` naming ``label`` when none matches.
    """
    candidates = _signatures().get(_signature(tzinfo))
    if not candidates:
        raise ValueError(f"time zone {label or tzinfo!r} matches no IANA or Windows zone")
    text = label.lower()

    def score(candidate: tuple[str, str]) -> int:
        windows_name, iana = candidate
        city = iana.rsplit("/", 1)[-1].replace("_", " ").lower()
        stem = windows_name.lower().replace(" standard time", "")
        return 2 if city in text else 1 if stem and stem in text else 0

    return max(candidates, key=score)[1]


def zone(name: str) -> dt.tzinfo:
    """tzinfo for an IANA name or ``"UTC"``."""
    return UTC if name == "UTC" else ZoneInfo(name)


def parse_graph_datetime(value: dict, fallback_zone: str | None = None) -> dt.datetime:
    """Aware datetime from Graph's ``dateTimeTimeZone`` ``{"dateTime", "timeZone"}``.

    ``dateTime`` is local wall-clock time in ``timeZone`` (7 fractional digits allowed).
    Unknown zones fall back to ``fallback_zone`` then UTC.
    """
    text = value["dateTime"]
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    naive = dt.datetime.fromisoformat(text.rstrip("Z"))
    name = iana_from_graph(value.get("timeZone")) or fallback_zone or "UTC"
    return naive.replace(tzinfo=zone(name))


def parse_graph_offset_datetime(text: str) -> dt.datetime:
    """Aware UTC datetime from a Graph ``Edm.DateTimeOffset`` string such as
    ``"2019-04-08T16:00:00Z"`` or ``"2017-10-01T00:00:00.0000000Z"``."""
    if "." in text:
        head, frac = text.split(".", 1)
        tail = ""
        for sign in ("Z", "+", "-"):
            if sign in frac:
                idx = frac.index(sign)
                frac, tail = frac[:idx], frac[idx:]
                break
        text = f"{head}.{frac[:6]}{tail}"
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def graph_datetime(value: dt.datetime, iana: str) -> dict:
    """Graph ``dateTimeTimeZone`` for an aware datetime, expressed in zone ``iana``.

    The ``timeZone`` is the Windows name CLDR gives (Graph's own vocabulary); zones without a
    Windows name are sent as UTC instants. Seconds precision.
    """
    try:
        windows = graph_from_iana(iana)
        local = value.astimezone(zone(iana))
    except KeyError:
        windows, local = "UTC", value.astimezone(UTC)
    return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"),
            "timeZone": windows}
