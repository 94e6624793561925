"""X-RADICALE-GRAPH-ONLINE-MEETING, CONFERENCE ⇄ ``isOnlineMeeting``, ``onlineMeetingProvider``,
``onlineMeeting``, ``onlineMeetingUrl``.

RFC 7986 5.11 (CONFERENCE); Graph resources/event.md and onlinemeetinginfo.md. The gateway
sets ``isOnlineMeeting`` only when the client asks with X-RADICALE-GRAPH-ONLINE-MEETING (Graph
cannot undo it); the join URL is read only and rendered as CONFERENCE.
"""

from __future__ import annotations

import icalendar

from ..errors import UnsupportedObject
from ..values import ONLINE_LABELS, ONLINE_PROVIDERS
from .base import Context, Field, Rendering

IS_ONLINE_MEETING = "isOnlineMeeting"
ONLINE_MEETING_PROVIDER = "onlineMeetingProvider"
ONLINE_MEETING = "onlineMeeting"
ONLINE_MEETING_URL = "onlineMeetingUrl"


def to_graph(parts, body: dict) -> None:
    """``isOnlineMeeting`` and ``onlineMeetingProvider`` when the client asks. Raises
    :class:`UnsupportedObject` for a provider Graph does not know."""
    provider = parts.vevent.get("X-RADICALE-GRAPH-ONLINE-MEETING")
    if provider is None:
        return
    name = ONLINE_PROVIDERS.get(str(provider).strip().lower())
    if name is None:
        raise UnsupportedObject(f"X-RADICALE-GRAPH-ONLINE-MEETING:{provider}",
                                "Graph's providers are teamsForBusiness, "
                                "skypeForBusiness and skypeForConsumer")
    body[IS_ONLINE_MEETING] = True
    body[ONLINE_MEETING_PROVIDER] = name


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """X-RADICALE-GRAPH-ONLINE-MEETING for an online meeting; CONFERENCE for its join URL."""
    provider = event.get(ONLINE_MEETING_PROVIDER)
    if event.get(IS_ONLINE_MEETING) and provider and provider != "unknown":
        out.add("X-RADICALE-GRAPH-ONLINE-MEETING", provider)
    join = ((event.get(ONLINE_MEETING) or {}).get("joinUrl")) or event.get(ONLINE_MEETING_URL)
    if join:
        label = ONLINE_LABELS.get(str(provider), "Online meeting")
        out.add("CONFERENCE", icalendar.vUri(join), {"VALUE": "URI", "FEATURE": "AUDIO,VIDEO",
                                                     "LABEL": label}, group="CONFERENCE")


def canonical(group: str, event: dict) -> list:
    """Whether it is an online meeting, and its provider."""
    return [bool(event.get(IS_ONLINE_MEETING)),
            str(event.get(ONLINE_MEETING_PROVIDER) or "unknown")]


ONLINE = Field("online meeting", (IS_ONLINE_MEETING, ONLINE_MEETING_PROVIDER, ONLINE_MEETING,
                                  ONLINE_MEETING_URL),
               groups=("ONLINE",), to_graph=to_graph, to_ical=to_ical, canonical=canonical)
