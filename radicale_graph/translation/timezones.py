"""Time zones: Windows names (Graph) and IANA names (iCalendar), and Graph's dateTimeTimeZone.

The Windows <-> IANA tables are CLDR's ``windowsZones.xml`` as shipped by maintained packages:
``icalendar.timezone.windows_to_olson`` (Windows -> primary IANA zone) and
``tzlocal.windows_tz`` (IANA -> Windows, every CLDR territory zone); IANA aliases are resolved
with ``icalendar.timezone.tzid.get_equivalent_tzids``.
Graph's ``dateTimeTimeZone`` is documented at resources/datetimetimezone.md: ``dateTime`` is a
local wall-clock time without offset, ``timeZone`` a Windows or IANA name. ``originalStartTimeZone``
may be ``tzone://Microsoft/Utc`` or ``tzone://Microsoft/Custom`` (a legacy custom zone set in
desktop Outlook; resources/event.md).

A zone is "matched by its rules" when its UTC offset equals a Windows zone's at every wall-clock
time that matters (the occurrences of the event), which makes the Graph event exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.tzid import get_equivalent_tzids
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON
from tzlocal.windows_tz import tz_win

UTC = dt.UTC
GRAPH_UTC_NAMES = {"utc", "tzone://microsoft/utc", "etc/utc", "etc/uct", "etc/universal",
                   "etc/zulu", "uct", "universal", "zulu", "z", "gmt", "etc/gmt",
                   "greenwich", "etc/greenwich", "gmt0", "etc/gmt0", "gmt+0", "gmt-0",
                   "etc/gmt+0", "etc/gmt-0"}
CUSTOM_ZONE = "tzone://Microsoft/Custom"
_WINDOWS_FOLDED = {name.casefold(): name for name in WINDOWS_TO_OLSON}

# Wall-clock probe times used when no event times are given: two years of fortnights, at
# 02:30 and 14:30 (DST changes happen at night).
_PROBES = [
    dt.datetime(year, month, day, hour, 30)
    for year in (2025, 2026)
    for month in range(1, 13)
    for day in (1, 8, 15, 22, 28)
    for hour in (2, 14)
]


def is_utc_name(name: str | None) -> bool:
    """True for the spellings of UTC that Graph and iCalendar clients use."""
    return bool(name) and name.strip().casefold() in GRAPH_UTC_NAMES


@lru_cache(maxsize=512)
def iana_from_graph(name: str | None) -> str | None:
    """IANA zone name for a Graph ``timeZone`` / ``originalStartTimeZone`` value.

    Windows names map through CLDR (case-insensitive); IANA names pass through; UTC spellings
    (including ``tzone://Microsoft/Utc``) give ``"UTC"``. Returns ``None`` for
    ``tzone://Microsoft/Custom``, empty or unknown names.
    """
    if not name:
        return None
    if is_utc_name(name):
        return "UTC"
    windows = _WINDOWS_FOLDED.get(name.strip().casefold())
    if windows is not None:
        olson = WINDOWS_TO_OLSON[windows]
        return "UTC" if is_utc_name(olson) else olson
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@lru_cache(maxsize=512)
def graph_from_iana(name: str) -> str:
    """Windows zone name Graph stores for an IANA zone (CLDR); ``"UTC"`` for UTC.

    Aliases (``US/Eastern``, ``Asia/Calcutta``) are resolved through their equivalent ids.
    Raises ``KeyError`` if CLDR has no Windows zone for ``name``.
    """
    if is_utc_name(name):
        return "UTC"
    if name in tz_win:
        return tz_win[name]
    windows = _WINDOWS_FOLDED.get(name.casefold())
    if windows is not None:
        return windows
    try:
        equivalents = get_equivalent_tzids(name)
    except (KeyError, ValueError):
        equivalents = ()
    found = {tz_win[other] for other in equivalents if other in tz_win}
    if len(found) == 1:
        return found.pop()
    raise KeyError(name)


def windows_zone(windows: str) -> dt.tzinfo:
    """tzinfo of a Windows zone name (its CLDR primary IANA zone)."""
    return zone(iana_from_graph(windows) or "UTC")


def zone(name: str) -> dt.tzinfo:
    """tzinfo for an IANA name, a Windows name or a UTC spelling. Raises ``KeyError``."""
    if is_utc_name(name):
        return UTC
    iana = iana_from_graph(name)
    if iana is None:
        raise KeyError(name)
    return UTC if iana == "UTC" else ZoneInfo(iana)


def tzid_of(tzinfo: dt.tzinfo | None) -> str | None:
    """The zone id a parsed iCalendar value carries: a ZoneInfo key, ``"UTC"``, a custom
    VTIMEZONE's TZID, or ``None`` for floating values."""
    if tzinfo is None:
        return None
    if tzinfo is UTC or tzinfo == dt.UTC:
        return "UTC"
    for attribute in ("key", "zone", "_tzid", "tzid"):
        value = getattr(tzinfo, attribute, None)
        if isinstance(value, str) and value:
            return value
    return str(tzinfo)


def _offsets_equal(a: dt.tzinfo, b: dt.tzinfo, walls: Iterable[dt.datetime]) -> bool:
    for wall in walls:
        naive = wall.replace(tzinfo=None)
        if naive.replace(tzinfo=a).utcoffset() != naive.replace(tzinfo=b).utcoffset():
            return False
    return True


def _windows_candidates(label: str) -> list[str]:
    text = label.casefold().replace("_", " ")

    def score(windows: str) -> tuple[int, str]:
        iana = WINDOWS_TO_OLSON[windows]
        city = iana.rsplit("/", 1)[-1].replace("_", " ").casefold()
        stem = windows.casefold().replace(" standard time", "")
        return (2 if city and city in text else 1 if stem in text else 0, windows)

    return sorted(WINDOWS_TO_OLSON, key=score, reverse=True)


def graph_zone(tzinfo: dt.tzinfo, walls: Iterable[dt.datetime] | None = None) -> str:
    """The Windows zone name Graph should hold for the client zone ``tzinfo``.

    ``walls`` are the wall-clock times (naive or aware in ``tzinfo``) of the event's
    occurrences: the Windows zone must give each the same UTC offset as ``tzinfo``. The
    client's own name is tried first (an IANA name through CLDR, a Windows name as is), then
    every Windows zone, preferring one whose city or name appears in the client's TZID
    (e.g. Outlook's "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna").
    Raises ``ValueError`` naming the TZID when no Windows zone has the same rules.
    """
    walls = list(walls) if walls is not None else _PROBES
    label = tzid_of(tzinfo) or ""
    if is_utc_name(label) and _offsets_equal(tzinfo, UTC, walls):
        return "UTC"
    first: list[str] = []
    try:
        first.append(graph_from_iana(label))
    except KeyError:
        pass
    if not _offsets_equal(tzinfo, UTC, walls):
        candidates = first + _windows_candidates(label)
    else:
        candidates = first + ["UTC"] + _windows_candidates(label)
    for windows in dict.fromkeys(candidates):
        if _offsets_equal(tzinfo, windows_zone(windows), walls):
            return windows
    raise ValueError(f"time zone {label!r} has rules no Windows time zone known to Graph has")


def match_by_rules(tzinfo: dt.tzinfo, label: str = "",
                   walls: Iterable[dt.datetime] | None = None) -> str:
    """IANA zone (a CLDR primary zone) whose offsets equal ``tzinfo``'s at ``walls`` (default:
    two years of probes). ``label`` (the client's TZID) breaks ties by city or Windows name.
    Raises ``ValueError`` naming ``label`` when none matches."""
    walls = list(walls) if walls is not None else _PROBES
    for windows in _windows_candidates(label or tzid_of(tzinfo) or ""):
        if _offsets_equal(tzinfo, windows_zone(windows), walls):
            return iana_from_graph(windows) or "UTC"
    raise ValueError(f"time zone {label or tzinfo!r} matches no IANA or Windows zone")


def tzinfo_name(tzinfo: dt.tzinfo | None) -> str | None:
    """IANA name for a tzinfo from a parsed iCalendar value, or ``None`` if floating.

    ZoneInfo zones give their key; UTC gives ``"UTC"``; other zones (custom VTIMEZONEs) are
    matched by rules (:func:`match_by_rules`). Raises ``ValueError`` if nothing matches.
    """
    if tzinfo is None:
        return None
    label = tzid_of(tzinfo) or ""
    if is_utc_name(label):
        return "UTC"
    if isinstance(tzinfo, ZoneInfo):
        return tzinfo.key
    mapped = iana_from_graph(label)
    if mapped:
        return mapped
    return match_by_rules(tzinfo, label)


def parse_graph_datetime(value: dict, fallback_zone: str | None = None) -> dt.datetime:
    """Aware datetime from Graph's ``dateTimeTimeZone`` ``{"dateTime", "timeZone"}``.

    ``dateTime`` is local wall-clock time in ``timeZone`` (7 fractional digits allowed).
    Unknown zones fall back to ``fallback_zone`` then UTC.
    """
    text = str(value["dateTime"])
    if "." in text:
        head, frac = text.split(".", 1)
        text = f"{head}.{frac.rstrip('Z')[:6]}"
    naive = dt.datetime.fromisoformat(text.rstrip("Z"))
    name = iana_from_graph(value.get("timeZone")) or fallback_zone or "UTC"
    return naive.replace(tzinfo=zone(name))


def graph_wall_date(value: dict) -> dt.date:
    """The calendar date of a Graph ``dateTimeTimeZone`` as written (all-day events keep
    their midnight wall times in whatever zone Graph shows them, resources/event.md)."""
    return dt.date.fromisoformat(str(value["dateTime"])[:10])


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


def graph_datetime(value: dt.datetime, name: str) -> dict:
    """Graph ``dateTimeTimeZone`` for an aware datetime, as wall time in zone ``name``: a
    Windows zone name, ``"UTC"``, or an IANA name (sent as its CLDR Windows name; raises
    ``KeyError`` if it has none). Seconds precision."""
    windows = name if name in WINDOWS_TO_OLSON or is_utc_name(name) else graph_from_iana(name)
    windows = "UTC" if is_utc_name(windows) else windows
    local = value.astimezone(windows_zone(windows))
    return {"dateTime": local.replace(tzinfo=None).isoformat(timespec="seconds"),
            "timeZone": windows}
