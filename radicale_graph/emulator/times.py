"""Graph's date and time values: ``dateTimeTimeZone``, DateTimeOffset strings and zones.

- ``dateTimeTimeZone`` (resources/datetimetimezone.md): ``dateTime`` is a wall-clock time without
  offset, ``timeZone`` a Windows or IANA name. Graph writes ``dateTime`` with seven fractional
  digits, e.g. ``"2017-04-15T12:00:00.0000000"``.
- DateTimeOffset properties (``createdDateTime``, ``originalStart``) are UTC with ``Z``.
- Zone names go through ``recurrence.windows_to_iana`` (CLDR mapping).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import GraphError

UTC = dt.UTC
_UTC_NAMES = {"utc", "tzone://microsoft/utc", "etc/utc", "gmt", "etc/gmt", "z"}
_LOCAL_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def _unsupported_zone(name: str) -> GraphError:
    return GraphError(
        400,
        "TimeZoneNotSupportedException",
        "A valid TimeZone value must be specified. The following TimeZone value is not "
        f"supported: '{name}'.",
    )


@lru_cache(maxsize=256)
def zone(name: str | None) -> dt.tzinfo:
    """The tzinfo for a Graph zone name (Windows or IANA, or a UTC spelling).

    Raises GraphError 400 TimeZoneNotSupportedException for names Graph would refuse.
    """
    if name is None or name.strip().lower() in _UTC_NAMES or name.strip() == "":
        return UTC
    from . import recurrence  # written alongside; imported late so the server starts without it

    try:
        iana = recurrence.windows_to_iana(name.strip())
    except KeyError:
        raise _unsupported_zone(name) from None
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        raise _unsupported_zone(name) from None


def zoneinfo_for(name: str | None) -> ZoneInfo:
    """Like :func:`zone` but always a ``ZoneInfo`` (UTC as ``ZoneInfo("UTC")``)."""
    tz = zone(name)
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo("UTC")


def parse_naive(text: str) -> tuple[dt.datetime, dt.tzinfo | None]:
    """Parse a Graph ``dateTime`` string: returns (naive wall-clock datetime, offset or None).

    Accepts ``YYYY-MM-DD[THH:MM[:SS[.fffffff]]][Z|±HH:MM]``. Raises ValueError otherwise.
    """
    m = _LOCAL_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    year, month, day, hour, minute, second, frac, off = m.groups()
    micro = int((frac or "0").ljust(7, "0")[:6])
    value = dt.datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro
    )
    tz: dt.tzinfo | None = None
    if off == "Z":
        tz = UTC
    elif off:
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return value, tz


def from_dtz(value: dict) -> dt.datetime:
    """Aware datetime for a ``dateTimeTimeZone`` dict. Raises GraphError 400 when unusable."""
    try:
        naive, offset = parse_naive(str(value.get("dateTime", "")))
    except ValueError:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The value '{value.get('dateTime')}' of parameter 'DateTime' is invalid.",
        ) from None
    tz = zone(value.get("timeZone"))
    if offset is not None:
        return naive.replace(tzinfo=offset).astimezone(tz)
    return naive.replace(tzinfo=tz)


def fmt_local(value: dt.datetime) -> str:
    """Wall-clock text in Graph's form ``YYYY-MM-DDTHH:MM:SS.fffffff`` (offset dropped)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0"


def to_dtz(value: dt.datetime, zone_name: str) -> dict:
    """``dateTimeTimeZone`` of an aware datetime shown in ``zone_name`` (spelled as given)."""
    return {"dateTime": fmt_local(value.astimezone(zone(zone_name))), "timeZone": zone_name}


def fmt_offset(value: dt.datetime) -> str:
    """DateTimeOffset text in UTC: ``2017-04-15T03:00:50.7579581Z`` or ``...:00Z`` when whole."""
    value = value.astimezone(UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += "." + f"{value.microsecond:06d}0".rstrip("0")
    return base + "Z"


def parse_query_instant(text: str | None, name: str) -> dt.datetime:
    """An instant from a ``startDateTime``/``endDateTime`` query value (no offset means UTC).

    Raises GraphError 400 ErrorInvalidParameter when the value is missing or unreadable
    (api/user-list-calendarview.md: both parameters are required).
    """
    if not text:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
        )
    try:
        naive, offset = parse_naive(text.replace(" ", "+"))
    except ValueError:
        raise GraphError(
            400, "ErrorInvalidParameter", f"The value '{text}' of parameter '{name}' is invalid."
        ) from None
    return naive.replace(tzinfo=offset or UTC)


def now() -> dt.datetime:
    """The current instant, aware UTC."""
    return dt.datetime.now(UTC)
