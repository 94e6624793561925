"""What one person may do with one calendar, derived from Exchange's own sharing.

Exchange is the source of truth (resources/calendarpermission.md): the owner and a
``calendarPermission`` role decide what a sharee sees and may change; the gateway turns that
into Radicale's rights letters (``r`` read, ``w`` write, ``f`` free/busy only; radicale/rights)
and into the view of the events (:mod:`.redaction`). The rights file of ``[rights]`` is applied
too and can only narrow this (:mod:`.rights`).

Roles (resources/calendarpermission.md):

========================================  ======  ==========================================
role                                      rights  events shown
========================================  ======  ==========================================
owner (the mailbox's own calendar)        rw      all
delegateWithPrivateEventAccess            rw      all, private ones included
write, delegateWithoutPrivateEventAccess  rw      private ones as busy blocks, not writable
read, custom                              r       private ones as busy blocks
limitedRead                               r       titles and locations; private ones busy
freeBusyRead                              f       free/busy only (getSchedule)
none, or no entry                         --      nothing: the calendar is not listed
========================================  ======  ==========================================

In delegated mode Graph shows the person's copy of a shared calendar with ``canEdit`` and
``canViewPrivateItems`` (concepts/outlook-create-event-in-shared-delegated-calendar.md) but not
the role: ``canEdit`` gives ``rw``, else ``r``.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import redaction

OWNER = "owner"
MEMBER = "member"  # a Microsoft 365 group's member (group calendars are the members')
MY_ORGANIZATION_ID = "RGVmYXVsdA=="  # api/calendar-list-calendarpermissions.md

_RIGHTS = {OWNER: "rw", MEMBER: "rw", "delegateWithPrivateEventAccess": "rw",
           "delegateWithoutPrivateEventAccess": "rw", "write": "rw", "read": "r",
           "custom": "r", "limitedRead": "r", "freeBusyRead": "f"}
_SAYS = {"freeBusyRead": "free/busy only", "limitedRead": "titles and locations, read-only",
         "read": "read-only", "custom": "custom (served read-only)",
         "write": "read and write", "delegateWithoutPrivateEventAccess":
         "delegate without access to private events",
         "delegateWithPrivateEventAccess": "delegate with access to private events",
         "editor": "read and write", "reviewer": "read-only"}


@dataclass(frozen=True)
class Grant:
    """One person's access to one calendar.

    ``role``: :data:`OWNER`, :data:`MEMBER` or a Graph ``calendarPermission`` role (delegated
    copies: ``editor``/``reviewer`` from ``canEdit``); ``rights``: Radicale letters (``rw``,
    ``r`` or ``f``); ``view``: the :mod:`.redaction` view of its events; ``owner``: who the
    calendar belongs to, ``"Name <address>"``."""

    role: str
    rights: str
    view: str
    owner: str = ""

    @property
    def writable(self) -> bool:
        """Whether events may be created, changed and deleted."""
        return "w" in self.rights

    @property
    def owned(self) -> bool:
        """Whether the person owns the calendar (may rename, recolour and delete it)."""
        return self.role == OWNER

    def says(self) -> str:
        """The role in words, e.g. ``read (read-only)``."""
        words = _SAYS.get(self.role)
        return f"{self.role} ({words})" if words else self.role

    def refusal(self, path: str, action: str) -> str:
        """Why ``action`` (e.g. "change events") on calendar ``path`` is refused: names the
        owner and the role, and what to do about it."""
        return (f"{path} is {self.owner}'s calendar, shared with you in Exchange as "
                f"{self.says()}: you may not {action} there; ask {self.owner} to change "
                f"your permission in Outlook (Calendar > Sharing permissions)")


def owner_grant(owner: str = "") -> Grant:
    """The owner's grant: everything."""
    return Grant(OWNER, "rw", redaction.FULL, owner)


def grant_for_role(role: str | None, owner: str) -> Grant | None:
    """The grant of a ``calendarPermission`` role (table above); ``None`` for ``none``,
    no role, or a role Graph may add later (unknown roles give nothing)."""
    if not role or role not in _RIGHTS:
        return None
    view = redaction.FULL if role in (OWNER, MEMBER) else redaction.view_for_role(role, False)
    if view is None:
        return None
    return Grant(role, _RIGHTS[role], view, owner)


def grant_for_copy(can_edit: bool, can_view_private: bool, owner: str) -> Grant:
    """The grant of a shared or delegated calendar as Graph lists it in the sharee's
    ``/me/calendars`` (``canEdit``, ``canViewPrivateItems``; seed 001)."""
    view = redaction.FULL if can_view_private else redaction.PRIVATE_HIDDEN
    return Grant("editor" if can_edit else "reviewer", "rw" if can_edit else "r", view, owner)


def role_in(permissions: list[dict], login: str, inside: bool) -> str | None:
    """The role of ``login`` in a calendar's ``calendarPermission`` list
    (api/calendar-list-calendarpermissions.md): its own entry (address compared without
    case), else, for a person ``inside`` the organization, the "My Organization" entry's
    role (Exchange's Default permission). ``None`` for no role or ``none``."""
    login = login.lower()
    organization = None
    for entry in permissions:
        address = ((entry.get("emailAddress") or {}).get("address") or "").lower()
        if address and address == login:
            role = entry.get("role")
            return None if role in (None, "none") else role
        if entry.get("id") == MY_ORGANIZATION_ID or (
                not address and entry.get("isRemovable") is False):
            organization = entry.get("role")
    if inside and organization not in (None, "none"):
        return organization
    return None


def label(name: str, address: str) -> str:
    """``"Name <address>"`` (just the address without a name)."""
    return f"{name} <{address}>" if name and name.lower() != address.lower() else address
