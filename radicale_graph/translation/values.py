"""Value tables between iCalendar enumerations (RFC 5545) and Graph enums (resources/event.md,
attendee.md, responsestatus.md). Each table is used in both directions; docs/mapping.md lists
them.
"""

from __future__ import annotations

# CLASS (RFC 5545 3.8.1.3) <-> sensitivity. RFC 5545: unknown CLASS values are treated as
# PRIVATE; Graph's "personal" has no RFC value and travels as the x-name X-PERSONAL.
CLASS_TO_SENSITIVITY = {"PUBLIC": "normal", "PRIVATE": "private",
                        "CONFIDENTIAL": "confidential", "X-PERSONAL": "personal"}
SENSITIVITY_TO_CLASS = {v: k for k, v in CLASS_TO_SENSITIVITY.items()}

# showAs <-> (TRANSP, X-MICROSOFT-CDO-BUSYSTATUS) ([MS-OXCICAL] 2.1.3.1.1.20.8 and .2.8).
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
BUSYSTATUS_TO_SHOW_AS = {"FREE": "free", "TENTATIVE": "tentative", "BUSY": "busy",
                         "OOF": "oof", "WORKINGELSEWHERE": "workingElsewhere",
                         "UNKNOWN": "unknown"}
SHOW_AS_TO_BUSYSTATUS = {v: k for k, v in BUSYSTATUS_TO_SHOW_AS.items()}
SHOW_AS_TRANSPARENT = {"free", "workingElsewhere", "unknown"}

# PRIORITY (RFC 5545 3.8.1.9: 1-4 high, 5 medium, 6-9 low, 0 undefined) <-> importance.
IMPORTANCE_TO_PRIORITY = {"high": 1, "normal": 5, "low": 9}


def priority_to_importance(priority: int) -> str:
    """Graph importance for an RFC 5545 PRIORITY (0 = undefined = normal)."""
    if 1 <= priority <= 4:
        return "high"
    if 6 <= priority <= 9:
        return "low"
    return "normal"


# PARTSTAT (RFC 5545 3.2.12) <-> responseStatus.response / attendee status.response.
PARTSTAT_TO_RESPONSE = {"NEEDS-ACTION": "none", "ACCEPTED": "accepted", "DECLINED": "declined",
                        "TENTATIVE": "tentativelyAccepted", "DELEGATED": "none"}
RESPONSE_TO_PARTSTAT = {"none": "NEEDS-ACTION", "notResponded": "NEEDS-ACTION",
                        "accepted": "ACCEPTED", "declined": "DECLINED",
                        "tentativelyAccepted": "TENTATIVE", "organizer": "ACCEPTED"}

# ROLE (RFC 5545 3.2.16) and CUTYPE (3.2.3) <-> attendee type.
ROLE_TO_TYPE = {"REQ-PARTICIPANT": "required", "CHAIR": "required",
                "OPT-PARTICIPANT": "optional", "NON-PARTICIPANT": "optional"}
TYPE_TO_ROLE = {"required": "REQ-PARTICIPANT", "optional": "OPT-PARTICIPANT",
                "resource": "NON-PARTICIPANT"}
RESOURCE_CUTYPES = {"ROOM", "RESOURCE"}

# Online meeting providers (onlineMeetingProviderType), asked for with
# X-RADICALE-GRAPH-ONLINE-MEETING.
ONLINE_PROVIDERS = {"teamsforbusiness": "teamsForBusiness", "skypeforbusiness":
                    "skypeForBusiness", "skypeforconsumer": "skypeForConsumer"}
ONLINE_LABELS = {"teamsForBusiness": "Microsoft Teams", "skypeForBusiness":
                 "Skype for Business", "skypeForConsumer": "Skype"}


def enum(value: str | None, choices, default: str) -> str:
    """Case-insensitive match of a Graph enum value (Graph's documented requests use
    ``"Required"``, ``"HTML"``); ``default`` when absent or unknown."""
    if not value:
        return default
    folded = {c.casefold(): c for c in choices}
    return folded.get(str(value).casefold(), default)
