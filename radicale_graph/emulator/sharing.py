"""Calendar sharing and delegation, Microsoft 365 groups and room lists of the emulated tenant.

Sources (``microsoftgraph/microsoft-graph-docs-contrib``, api-reference/v1.0 and concepts):

- resources/calendarpermission.md: a ``calendarPermission`` has ``id``, ``emailAddress``,
  ``isRemovable``, ``isInsideOrganization``, ``role`` and ``allowedRoles``; roles ``none``,
  ``freeBusyRead``, ``limitedRead`` (free/busy, titles and locations), ``read`` (all details
  except the owner's private events), ``write`` (read + edit), ``delegateWithoutPrivateEventAccess``
  (write, "can't view information of the owner's private events"),
  ``delegateWithPrivateEventAccess`` (write and private events), ``custom``. List, create, get,
  update and delete are "supported on behalf of only the calendar owner"; on behalf of a
  recipient or delegate the list "returns an empty calendar permissions collection"; only
  ``role`` can be updated. The "My Organization" entry (``isRemovable`` false) is always there;
  its ``allowedRoles`` are ``none``, ``freeBusyRead``, ``limitedRead``, ``read``, ``write``, and
  its ``role`` (default ``freeBusyRead``) can be updated like any other, but it cannot be
  deleted. It is Exchange's "Default" folder permission: it applies to every user inside the
  organization who has no entry of their own (:meth:`SharingStore.role_of`); Outlook adds a
  calendar to a user's calendar list only after an explicit share
  (:meth:`SharingStore.shared_with`).
- api/calendar-list-calendarpermissions.md (response example: ids are base64 of
  ``ExchangePublishedUser.<address>``, "My Organization" is ``RGVmYXVsdA==`` = "Default" with
  role ``freeBusyRead``), api/calendar-post-calendarpermissions.md (``200 OK`` with the new
  entity), api/calendarpermission-update.md, api/calendarpermission-delete.md (``204``).
- concepts/outlook-share-or-delegate-calendar.md: delegation is on the owner's primary
  calendar; concepts/outlook-create-event-in-shared-delegated-calendar.md (seed 001): the
  sharee's ``/me/calendars`` lists "a copy of the calendar delegated ... in Adele's mailbox"
  with its own id, ``name`` the owner's name, ``canShare`` false, ``canEdit`` true for a
  delegate, ``canViewPrivateItems`` false without private access, ``owner`` the owner.
- Groups: api/group-list.md, api/group-get.md, api/group-list-members.md,
  api/group-get-calendar.md, api/group-list-events.md (application permissions "Not
  supported"), api/user-list-memberof.md. Room lists: api/place-list.md (examples 2 and 3).

Private items seen by a sharee without private access: the Graph documentation says only that
such a user "can't view information of the owner's private events" (resources/
calendarpermission.md) and does not show the payload. The emulator keeps the item (its time,
``showAs``, ``sensitivity``, ids) and empties everything that is information about it: subject,
body, bodyPreview, location(s), attendees, categories, online meeting — the most restrictive
reading of that sentence that still lets free/busy work (see :func:`redact`).
"""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass, field

from . import ids
from .errors import GraphError, bad_request, not_found

ROLES = ("none", "freeBusyRead", "limitedRead", "read", "write",
         "delegateWithoutPrivateEventAccess", "delegateWithPrivateEventAccess", "custom")
DELEGATE_ROLES = {"delegateWithoutPrivateEventAccess", "delegateWithPrivateEventAccess"}
WRITE_ROLES = {"write"} | DELEGATE_ROLES
#: Roles whose holder may list events (freeBusyRead gives free/busy only).
EVENT_ROLES = {"limitedRead", "read", "custom"} | WRITE_ROLES
MY_ORGANIZATION_ID = "RGVmYXVsdA=="  # base64("Default"), api/calendar-list-calendarpermissions.md
#: ``allowedRoles`` of "My Organization" and its default role (api/calendar-list-
#: calendarpermissions.md, response example).
ORGANIZATION_ROLES = ("none", "freeBusyRead", "limitedRead", "read", "write")
ORGANIZATION_DEFAULT_ROLE = "freeBusyRead"
_LIMITED_KEEP = ("subject", "location", "locations")


def permission_id(address: str) -> str:
    """The id Exchange gives a sharee's permission: base64 of ``ExchangePublishedUser.<addr>``
    (api/calendar-list-calendarpermissions.md, api/calendar-post-calendarpermissions.md)."""
    return base64.b64encode(f"ExchangePublishedUser.{address}".encode()).decode()


def allowed_roles(inside: bool, primary: bool) -> list:
    """``allowedRoles`` of a sharee: outside the organization free/busy, limited and full read
    (the examples of api/calendar-post-calendarpermissions.md); inside it also ``write``, and on
    the primary calendar the delegate roles (concepts/outlook-share-or-delegate-calendar.md)."""
    roles = ["freeBusyRead", "limitedRead", "read"]
    if inside:
        roles.append("write")
        if primary:
            roles += ["delegateWithoutPrivateEventAccess", "delegateWithPrivateEventAccess"]
    return roles


def redact(data: dict, role: str) -> dict:
    """An event as a sharee with ``role`` sees it (resources/calendarpermission.md):
    ``limitedRead`` keeps subject and location only; a private item (``sensitivity``
    private) without ``delegateWithPrivateEventAccess`` keeps none of its information."""
    private = data.get("sensitivity") == "private" and role != "delegateWithPrivateEventAccess"
    if not private and role != "limitedRead":
        return data
    out = copy.deepcopy(data)
    for name, empty in (("subject", ""), ("bodyPreview", ""),
                        ("body", {"contentType": "text", "content": ""}),
                        ("location", {"displayName": "", "locationType": "default",
                                      "uniqueIdType": "unknown"}),
                        ("locations", []), ("attendees", []), ("categories", []),
                        ("onlineMeeting", None), ("onlineMeetingUrl", None)):
        if name in out and (private or name not in _LIMITED_KEEP):
            out[name] = copy.deepcopy(empty)
    if private and out.get("isOnlineMeeting"):
        out["isOnlineMeeting"] = False
    return out


@dataclass
class Group:
    """A Microsoft 365 (unified) group; its calendar is a mailbox of the groups' store."""

    id: str
    mail: str
    display_name: str
    description: str = ""
    members: list = field(default_factory=list)  # member UPNs, lower-case

    def json(self) -> dict:
        """The ``group`` resource (api/group-get.md properties)."""
        return {"id": self.id, "description": self.description,
                "displayName": self.display_name, "groupTypes": ["Unified"],
                "mail": self.mail, "mailEnabled": True,
                "mailNickname": self.mail.split("@")[0], "securityEnabled": False,
                "visibility": "Private"}


class SharingStore:
    """Mixin of :class:`~radicale_graph.emulator.store.Store`: calendar permissions
    (``self._permissions``: (owner guid, calendar id) -> list of calendarPermission dicts;
    ``self._org_roles``: (owner guid, calendar id) -> role of "My Organization", when it is not
    the default ``freeBusyRead``),
    groups (``self.groups``; their calendars live in ``self.group_store``) and room lists
    (``self.room_lists``: roomList dicts with ``rooms``, the room addresses)."""

    def _init_sharing(self, group_store) -> None:
        self._permissions: dict[tuple, list] = {}
        self._org_roles: dict[tuple, str] = {}
        self.groups: dict[str, Group] = {}
        self.group_store = group_store
        self.room_lists: list[dict] = []
        self._copy_names: dict[tuple, str] = {}  # (sharee guid, owner guid, cid) -> name

    # -- calendar permissions -------------------------------------------------------------

    def _perm_target(self, owner: str, calendar_id: str | None):
        box = self._box(owner)
        cid = calendar_id or box.default_calendar_id
        if cid not in box.calendars:
            raise not_found()
        return box, cid

    def _organization_entry(self, box, cid: str) -> dict:
        """The "My Organization" calendarPermission of the calendar (a new dict)."""
        return {"id": MY_ORGANIZATION_ID, "isRemovable": False, "isInsideOrganization": True,
                "role": self._org_roles.get((box.guid, cid), ORGANIZATION_DEFAULT_ROLE),
                "allowedRoles": list(ORGANIZATION_ROLES),
                "emailAddress": {"name": "My Organization"}}

    def permissions(self, owner: str, calendar_id: str | None) -> list:
        """The calendar's calendarPermission list: sharees, then "My Organization" (copies)."""
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            mine = copy.deepcopy(self._permissions.get((box.guid, cid), []))
            return mine + [self._organization_entry(box, cid)]

    def set_organization_role(self, owner: str, calendar_id: str | None, role: str) -> None:
        """Test control: the role of "My Organization" on ``owner``'s calendar (None = the
        default one), as an Outlook owner sets it; one of ``none``, ``freeBusyRead``,
        ``limitedRead``, ``read``, ``write``."""
        if role not in ORGANIZATION_ROLES:
            raise ValueError(f"role must be one of {', '.join(ORGANIZATION_ROLES)}")
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            self._org_roles[(box.guid, cid)] = role

    def organization_role(self, owner: str, calendar_id: str | None) -> str:
        """The role of "My Organization" on the calendar (default ``freeBusyRead``)."""
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            return self._org_roles.get((box.guid, cid), ORGANIZATION_DEFAULT_ROLE)

    def inside_organization(self, address: str) -> bool:
        """Whether ``address`` is inside the emulated tenant: one of its mailboxes or an
        address of its domain."""
        address = (address or "").strip()
        if self.mailbox(address) is not None:
            return True
        return "@" in address and \
            address.rsplit("@", 1)[-1].lower() == self.tenant_domain.lower()

    def add_permission(self, owner: str, calendar_id: str | None, body: dict) -> dict:
        """Create (or, for a known address, replace the role of) a calendarPermission from a
        request body with ``emailAddress`` and ``role`` (api/calendar-post-calendarpermissions)."""
        address = ((body.get("emailAddress") or {}).get("address") or "").strip()
        role = body.get("role")
        if not address or not role:
            raise bad_request("emailAddress.address and role are required.",
                              "ErrorInvalidRequest")
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            if address.lower() == box.upn.lower():
                raise bad_request("The owner of a calendar cannot be a share recipient.",
                                  "ErrorInvalidRequest")
            sharee = self.mailbox(address)
            inside = self.inside_organization(address)
            if body.get("isInsideOrganization") is not None:
                inside = bool(body["isInsideOrganization"])
            allowed = allowed_roles(inside, cid == box.default_calendar_id)
            if role not in allowed:
                raise bad_request(f"The role '{role}' is not allowed for this recipient; "
                                  f"allowed roles: {', '.join(allowed)}.", "ErrorInvalidRequest")
            entries = self._permissions.setdefault((box.guid, cid), [])
            pid = permission_id(sharee.upn if sharee else address)
            name = (body.get("emailAddress") or {}).get("name") or (
                sharee.display_name if sharee else address)
            perm = {"id": pid, "isRemovable": True, "isInsideOrganization": inside,
                    "role": role, "allowedRoles": allowed,
                    "emailAddress": {"name": name, "address": sharee.upn if sharee else address}}
            entries[:] = [p for p in entries if p["id"] != pid] + [perm]
            return copy.deepcopy(perm)

    def update_permission(self, owner: str, calendar_id: str | None, pid: str,
                          patch: dict) -> dict:
        """PATCH a calendarPermission: only ``role`` can change (resources/calendarpermission),
        "My Organization" included (to one of its ``allowedRoles``)."""
        others = sorted(k for k in patch if k not in ("role", "@odata.type"))
        if others:
            raise bad_request(f"Only the role of a calendarPermission can be updated, not "
                              f"{', '.join(others)}.", "ErrorInvalidRequest")
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            if pid == MY_ORGANIZATION_ID:
                if "role" in patch:
                    if patch["role"] not in ORGANIZATION_ROLES:
                        raise bad_request(f"The role '{patch['role']}' is not allowed for "
                                          "'My Organization'.", "ErrorInvalidRequest")
                    self._org_roles[(box.guid, cid)] = patch["role"]
                return self._organization_entry(box, cid)
            for perm in self._permissions.get((box.guid, cid), []):
                if perm["id"] == pid:
                    if "role" in patch:
                        if patch["role"] not in perm["allowedRoles"] + ["none"]:
                            raise bad_request(f"The role '{patch['role']}' is not allowed for "
                                              "this recipient.", "ErrorInvalidRequest")
                        perm["role"] = patch["role"]
                    return copy.deepcopy(perm)
            raise not_found()

    def delete_permission(self, owner: str, calendar_id: str | None, pid: str) -> None:
        """DELETE a calendarPermission (api/calendarpermission-delete.md); "My Organization"
        is not removable (``isRemovable`` false)."""
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            if pid == MY_ORGANIZATION_ID:
                raise GraphError(403, "ErrorAccessDenied",
                                 "The 'My Organization' permission cannot be removed.")
            entries = self._permissions.get((box.guid, cid), [])
            if not any(p["id"] == pid for p in entries):
                raise not_found()
            entries[:] = [p for p in entries if p["id"] != pid]

    def share(self, owner: str, calendar_id: str | None, sharee: str, role: str) -> str:
        """Test control: share ``owner``'s calendar (None = default) with ``sharee`` as Outlook
        does; returns the permission id."""
        return self.add_permission(owner, calendar_id, {
            "emailAddress": {"address": sharee}, "role": role})["id"]

    def unshare(self, owner: str, calendar_id: str | None, sharee: str) -> None:
        """Test control: remove ``sharee`` (address or permission id) from the calendar."""
        box = self._box(owner)
        target = self.mailbox(sharee)
        pid = sharee if "@" not in sharee else permission_id(target.upn if target else sharee)
        self.delete_permission(box.upn, calendar_id, pid)

    def role_of(self, owner: str, calendar_id: str | None, user: str) -> str | None:
        """The role ``user`` has on the calendar, or None: their own permission entry if
        there is one, else — for a user inside the organization (:meth:`inside_organization`)
        — the role of "My Organization", as Exchange's Default permission applies. A role
        ``none`` is None."""
        with self.lock:
            box, cid = self._perm_target(owner, calendar_id)
            who = self.mailbox(user)
            address = (who.upn if who else user).lower()
            for perm in self._permissions.get((box.guid, cid), []):
                if (perm["emailAddress"].get("address") or "").lower() == address:
                    return None if perm["role"] == "none" else perm["role"]
            if not self.inside_organization(address):
                return None
            role = self._org_roles.get((box.guid, cid), ORGANIZATION_DEFAULT_ROLE)
            return None if role == "none" else role

    def shared_with(self, user: str) -> list:
        """Calendars shared with or delegated to ``user`` by an explicit permission entry
        (owner box, calendar id, role): Outlook adds a calendar to the sharee's list only
        after an explicit share, so "My Organization" does not count here."""
        with self.lock:
            who = self.mailbox(user)
            address = (who.upn if who else user).lower()
            out = []
            for box in self.mailboxes():
                for cid in box.calendars:
                    for perm in self._permissions.get((box.guid, cid), []):
                        if (perm["emailAddress"].get("address") or "").lower() == address \
                                and perm["role"] != "none":
                            out.append((box, cid, perm["role"]))
            return out

    @staticmethod
    def copy_id(sharee_guid: str, owner_guid: str, cid: str) -> str:
        """The id of the sharee's copy of a shared calendar (seed 001: its own id)."""
        return ids.new_folder_id(sharee_guid, seed=f"shared:{owner_guid}:{cid}")

    def sharee_calendar(self, box, cid: str, role: str, copy_for=None) -> dict:
        """The calendar as a sharee sees it (seed 001): ``canShare`` false, ``canEdit`` for
        write and delegate roles, ``canViewPrivateItems`` for delegateWithPrivateEventAccess
        only, ``owner`` the sharer. ``copy_for``: the sharee's mailbox, for the copy in the
        sharee's ``/me/calendars`` (own id; named after the owner for a primary calendar)."""
        with self.lock:
            cal = copy.deepcopy(box.calendars[cid])
        cal.update({"canShare": False, "canEdit": role in WRITE_ROLES,
                    "canViewPrivateItems": role == "delegateWithPrivateEventAccess",
                    "isDefaultCalendar": False, "isTallyingResponses": False,
                    "owner": {"name": box.display_name, "address": box.upn}})
        if copy_for is not None:
            cal["id"] = self.copy_id(copy_for.guid, box.guid, cid)
            cal["isRemovable"] = True
            if cid == box.default_calendar_id:
                cal["name"] = box.display_name
            cal["name"] = self._copy_names.get((copy_for.guid, box.guid, cid), cal["name"])
        return cal

    def rename_copy(self, sharee: str, owner: str, cid: str, name: str) -> None:
        """Rename the sharee's copy of a shared calendar (the owner's calendar keeps its name)."""
        with self.lock:
            self._copy_names[(self._box(sharee).guid, self._box(owner).guid, cid)] = name

    def find_copy(self, user: str, copy_id: str):
        """(owner box, calendar id, role) of the sharee's calendar copy ``copy_id``, or None."""
        who = self.mailbox(user)
        if who is None:
            return None
        for box, cid, role in self.shared_with(user):
            if self.copy_id(who.guid, box.guid, cid) == copy_id:
                return box, cid, role
        return None

    # -- groups ---------------------------------------------------------------------------

    def add_group(self, mail: str, display_name: str, members=(), description: str = "") -> Group:
        """Create a Microsoft 365 group with a calendar; ``members`` are user UPNs."""
        with self.lock:
            box = self.group_store.add_mailbox(mail, display_name, kind="group")
            group = Group(box.guid, mail, display_name, description,
                          [self._box(m).upn.lower() for m in members])
            self.groups[group.id] = group
            return group

    def group(self, ref: str) -> Group | None:
        """A group by id or mail (any case), or None."""
        with self.lock:
            ref = (ref or "").lower()
            for group in self.groups.values():
                if ref in (group.id.lower(), group.mail.lower()):
                    return group
            return None

    def member_of(self, user: str) -> list:
        """Groups ``user`` is a direct member of (api/user-list-memberof.md)."""
        box = self._box(user)
        with self.lock:
            return [g for g in self.groups.values() if box.upn.lower() in g.members]

    # -- room lists -----------------------------------------------------------------------

    def add_room_list(self, email: str, display_name: str, rooms=(), address=None) -> dict:
        """A roomList place (api/place-list.md, example 2) holding the rooms ``rooms``."""
        entry = {"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, email.lower())).upper(),
                 "displayName": display_name, "address": address, "geoCoordinates": None,
                 "phone": None, "emailAddress": email, "rooms": [r.lower() for r in rooms]}
        with self.lock:
            self.room_lists.append(entry)
        return copy.deepcopy(entry)
