"""CalDAV ``calendar-color`` (Apple's ``http://apple.com/ns/ical/`` property, ``#RRGGBB`` or
``#RRGGBBAA``) to Graph's ``calendarColor`` and back.

Graph v1.0's calendar ``color`` is writable and takes one of ``auto``, ``lightBlue``,
``lightGreen``, ``lightOrange``, ``lightGray``, ``lightYellow``, ``lightTeal``, ``lightPink``,
``lightBrown``, ``lightRed``, ``maxColor``; ``hexColor`` is read-only (resources/calendar.md,
api/calendar-update.md). Graph documents the names only, not their RGB: the values in
:data:`PALETTE` are Outlook's light calendar palette as approximated by this project, not
values Microsoft publishes. ``auto`` (Outlook's choice) and ``maxColor`` (the enumeration's
end marker) have no colour and are never chosen.
"""

from __future__ import annotations

import colorsys

PALETTE: dict[str, tuple[int, int, int]] = {
    "lightBlue": (0xA0, 0xC3, 0xFF),
    "lightGreen": (0x87, 0xD2, 0x8E),
    "lightOrange": (0xFC, 0xAB, 0x73),
    "lightGray": (0xC0, 0xC0, 0xC0),
    "lightYellow": (0xF4, 0xE0, 0x75),
    "lightTeal": (0x62, 0xD4, 0xCC),
    "lightPink": (0xF0, 0x8C, 0xC0),
    "lightBrown": (0xCA, 0x9C, 0x72),
    "lightRed": (0xF2, 0x7C, 0x7C),
}


def parse(text: str) -> tuple[int, int, int] | None:
    """RGB of ``#RGB``, ``#RRGGBB`` or ``#RRGGBBAA`` (alpha ignored); ``None`` otherwise."""
    value = (text or "").strip().lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    if len(value) not in (6, 8):
        return None
    try:
        return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
    except ValueError:
        return None


def _hls(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return colorsys.rgb_to_hls(*(c / 255 for c in rgb))


def _chroma(lightness: float, saturation: float) -> float:
    return saturation * (1 - abs(2 * lightness - 1))


def nearest(text: str) -> str | None:
    """The ``calendarColor`` nearest to a CalDAV colour, or ``None`` when ``text`` is no
    colour. Outlook's palette holds light tints only, so colours are compared by hue (a dark
    blue is ``lightBlue``, not ``lightGray``): a colour of little chroma is ``lightGray``, a
    dark orange is ``lightBrown``, any other the palette entry of the nearest hue."""
    rgb = parse(text)
    if rgb is None:
        return None
    hue, lightness, saturation = _hls(rgb)
    if _chroma(lightness, saturation) < 0.12:
        return "lightGray"
    degrees = hue * 360
    if 10 <= degrees <= 50 and lightness < 0.4:
        return "lightBrown"

    def distance(name: str) -> float:
        other = _hls(PALETTE[name])[0] * 360
        diff = abs(degrees - other) % 360
        return min(diff, 360 - diff)

    return min((n for n in PALETTE if n not in ("lightGray", "lightBrown")), key=distance)


def hex_of(value: str) -> str:
    """``#RRGGBB`` of a ``calendarColor`` value; ``""`` for ``auto``, ``maxColor`` or none."""
    rgb = PALETTE.get(value or "")
    return "#{:02X}{:02X}{:02X}".format(*rgb) if rgb else ""


def shown(client_color: str, written_value: str, graph_color: str, graph_hex: str) -> str:
    """The ``calendar-color`` a client reads: the client's own string while Graph still holds
    the value written for it; otherwise (never set through CalDAV, or changed in Outlook
    since) Graph's ``hexColor``, else the palette colour of Graph's ``color``, else ``""``."""
    if client_color and written_value == (graph_color or ""):
        return client_color
    return graph_hex or hex_of(graph_color)
