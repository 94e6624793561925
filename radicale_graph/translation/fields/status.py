"""CLASS, TRANSP, X-MICROSOFT-CDO-BUSYSTATUS, PRIORITY, STATUS, X-MICROSOFT-DISALLOW-COUNTER ⇄
``sensitivity``, ``showAs``, ``importance``, ``isCancelled``, ``allowNewTimeProposals``.

RFC 5545 3.8.1.3 (CLASS), 3.8.1.9 (PRIORITY), 3.8.1.11 (STATUS), 3.8.2.7 (TRANSP);
[MS-OXCICAL] 2.1.3.1.1.20.8 (BUSYSTATUS) and .20.7 (DISALLOW-COUNTER); Graph
resources/event.md. ``isCancelled`` is read only (api/event-update.md): STATUS:CANCELLED is
``EventPlan.status_cancelled``, checked by ``check_against``. The value tables are
:mod:`..values`.
"""

from __future__ import annotations

from ..errors import UnsupportedObject
from ..values import (
    BUSYSTATUS_TO_SHOW_AS,
    CLASS_TO_SENSITIVITY,
    IMPORTANCE_TO_PRIORITY,
    SENSITIVITY_TO_CLASS,
    SHOW_AS,
    SHOW_AS_TO_BUSYSTATUS,
    SHOW_AS_TRANSPARENT,
    enum,
    priority_to_importance,
)
from .base import Context, Field, Rendering

SENSITIVITY = "sensitivity"
SHOW_AS_FIELD = "showAs"
IMPORTANCE = "importance"
IS_CANCELLED = "isCancelled"
ALLOW_NEW_TIME_PROPOSALS = "allowNewTimeProposals"


# CLASS <-> sensitivity

def class_to_graph(parts, body: dict) -> None:
    """``sensitivity`` from CLASS (unknown values: private, RFC 5545 3.8.1.3)."""
    klass = str(parts.vevent.get("CLASS", "PUBLIC")).upper()
    body[SENSITIVITY] = CLASS_TO_SENSITIVITY.get(klass, "private")


def class_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """CLASS for every sensitivity but normal."""
    sensitivity = enum(event.get(SENSITIVITY), SENSITIVITY_TO_CLASS, "normal")
    if sensitivity != "normal":
        out.add("CLASS", SENSITIVITY_TO_CLASS[sensitivity])


# TRANSP, X-MICROSOFT-CDO-BUSYSTATUS <-> showAs

def show_as_to_graph(parts, body: dict) -> None:
    """``showAs`` from X-MICROSOFT-CDO-BUSYSTATUS, else TRANSP (TRANSPARENT: free)."""
    event = parts.vevent
    busy = event.get("X-MICROSOFT-CDO-BUSYSTATUS")
    found = BUSYSTATUS_TO_SHOW_AS.get(str(busy).strip().upper()) if busy is not None else None
    if not found:
        found = "free" if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT" \
            else "busy"
    body[SHOW_AS_FIELD] = found


def show_as_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """TRANSP always; BUSYSTATUS for tentative, oof, workingElsewhere, unknown."""
    show_as = enum(event.get(SHOW_AS_FIELD), SHOW_AS, "busy")
    out.add("TRANSP", "TRANSPARENT" if show_as in SHOW_AS_TRANSPARENT else "OPAQUE")
    if show_as not in ("free", "busy"):
        out.add("X-MICROSOFT-CDO-BUSYSTATUS", SHOW_AS_TO_BUSYSTATUS[show_as])


# PRIORITY <-> importance

def priority_to_graph(parts, body: dict) -> None:
    """``importance`` from PRIORITY (1-4 high, 6-9 low, else normal). Raises
    :class:`UnsupportedObject` for a value that is no number."""
    value = parts.vevent.get("PRIORITY")
    if value is None:
        body[IMPORTANCE] = "normal"
        return
    try:
        body[IMPORTANCE] = priority_to_importance(int(value))
    except (TypeError, ValueError):
        raise UnsupportedObject("PRIORITY", f"{value!r} is not a number 0-9") from None


def priority_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """PRIORITY 1 for high, 9 for low; none for normal."""
    importance = enum(event.get(IMPORTANCE), IMPORTANCE_TO_PRIORITY, "normal")
    if importance != "normal":
        out.add("PRIORITY", IMPORTANCE_TO_PRIORITY[importance])


# STATUS:CANCELLED <- isCancelled (read only)

def status_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """STATUS:CANCELLED when Graph says ``isCancelled``."""
    if event.get(IS_CANCELLED):
        out.add("STATUS", "CANCELLED")


# X-MICROSOFT-DISALLOW-COUNTER <-> allowNewTimeProposals

def counter_to_graph(parts, body: dict) -> None:
    """``allowNewTimeProposals`` = not TRUE, written only when the property is present."""
    counter = parts.vevent.get("X-MICROSOFT-DISALLOW-COUNTER")
    if counter is not None:
        body[ALLOW_NEW_TIME_PROPOSALS] = str(counter).strip().upper() != "TRUE"


def counter_to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """X-MICROSOFT-DISALLOW-COUNTER:TRUE when ``allowNewTimeProposals`` is false."""
    if event.get(ALLOW_NEW_TIME_PROPOSALS) is False:
        out.add("X-MICROSOFT-DISALLOW-COUNTER", "TRUE")


def canonical(group: str, event: dict):
    """CLASS, SHOWAS, PRIORITY: the enum (case-folded); STATUS: cancelled or not; COUNTER:
    whether new times may be proposed."""
    if group == "CLASS":
        return str(event.get(SENSITIVITY) or "normal").lower()
    if group == "SHOWAS":
        return str(event.get(SHOW_AS_FIELD) or "busy").lower()
    if group == "PRIORITY":
        return str(event.get(IMPORTANCE) or "normal").lower()
    if group == "STATUS":
        return bool(event.get(IS_CANCELLED))
    return event.get(ALLOW_NEW_TIME_PROPOSALS) is not False


CLASS = Field("CLASS", (SENSITIVITY,), groups=("CLASS",), to_graph=class_to_graph,
              to_ical=class_to_ical, canonical=canonical, occurrence=(SENSITIVITY,))
SHOWAS = Field("TRANSP", (SHOW_AS_FIELD,), groups=("SHOWAS",), to_graph=show_as_to_graph,
               to_ical=show_as_to_ical, canonical=canonical, occurrence=(SHOW_AS_FIELD,))
PRIORITY = Field("PRIORITY", (IMPORTANCE,), groups=("PRIORITY",), to_graph=priority_to_graph,
                 to_ical=priority_to_ical, canonical=canonical, occurrence=(IMPORTANCE,))
STATUS = Field("STATUS", (IS_CANCELLED,), groups=("STATUS",), to_ical=status_to_ical,
               canonical=canonical, occurrence=(IS_CANCELLED,))
COUNTER = Field("X-MICROSOFT-DISALLOW-COUNTER", (ALLOW_NEW_TIME_PROPOSALS,),
                groups=("COUNTER",), to_graph=counter_to_graph, to_ical=counter_to_ical,
                canonical=canonical)
