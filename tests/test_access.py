"""Exchange roles as Radicale rights (radicale_graph/storage/access.py, rights.py)."""

from __future__ import annotations

import pytest

from radicale_graph.storage import access, redaction
from radicale_graph.storage.rights import narrow

BOB = "Bob Brown <bob@contoso.com>"


@pytest.mark.parametrize(("role", "rights", "view"), [
    ("owner", "rw", redaction.FULL),
    ("delegateWithPrivateEventAccess", "rw", redaction.FULL),
    ("delegateWithoutPrivateEventAccess", "rw", redaction.PRIVATE_HIDDEN),
    ("write", "rw", redaction.PRIVATE_HIDDEN),
    ("read", "r", redaction.PRIVATE_HIDDEN),
    ("custom", "r", redaction.PRIVATE_HIDDEN),
    ("limitedRead", "r", redaction.LIMITED),
    ("freeBusyRead", "f", redaction.FREE_BUSY),
])
def test_each_role_gives_its_rights_and_view(role, rights, view):
    grant = access.grant_for_role(role, BOB)
    assert (grant.rights, grant.view, grant.owner) == (rights, view, BOB)
    assert grant.writable == ("w" in rights)
    assert grant.owned == (role == "owner")


@pytest.mark.parametrize("role", [None, "", "none", "someFutureRole"])
def test_no_role_gives_nothing(role):
    assert access.grant_for_role(role, BOB) is None


def test_a_refusal_names_the_owner_the_role_and_the_fix():
    text = access.grant_for_role("read", BOB).refusal("/alice@contoso.com/x/", "change events")
    assert "Bob Brown <bob@contoso.com>" in text and "read (read-only)" in text
    assert "/alice@contoso.com/x/" in text and "Outlook" in text


def test_delegated_copies_give_write_by_can_edit_and_private_by_can_view():
    assert access.grant_for_copy(True, True, BOB).rights == "rw"
    assert access.grant_for_copy(True, False, BOB).view == redaction.PRIVATE_HIDDEN
    reader = access.grant_for_copy(False, False, BOB)
    assert (reader.rights, reader.writable, reader.owned) == ("r", False, False)


PERMISSIONS = [  # shaped like api/calendar-list-calendarpermissions.md
    {"id": "RXhjaGFuZ2VQdWJsaXNoZWRVc2VyLmFsaWNlQGNvbnRvc28uY29t", "isRemovable": True,
     "role": "read", "emailAddress": {"name": "Alice", "address": "Alice@Contoso.com"}},
    {"id": "x", "isRemovable": True, "role": "none",
     "emailAddress": {"address": "eve@contoso.com"}},
    {"id": access.MY_ORGANIZATION_ID, "isRemovable": False, "role": "limitedRead",
     "emailAddress": {"name": "My Organization"}},
]


def test_role_in_prefers_the_own_entry_then_my_organization_inside_only():
    assert access.role_in(PERMISSIONS, "alice@contoso.com", inside=False) == "read"
    assert access.role_in(PERMISSIONS, "eve@contoso.com", inside=True) is None  # none wins
    assert access.role_in(PERMISSIONS, "carol@contoso.com", inside=True) == "limitedRead"
    assert access.role_in(PERMISSIONS, "carol@contoso.com", inside=False) is None
    assert access.role_in([], "carol@contoso.com", inside=True) is None


@pytest.mark.parametrize(("base", "allowed", "expected"), [
    ("rw", "rw", "rw"),
    ("rw", "r", "r"),         # Exchange read-only: the file's w is dropped
    ("r", "rw", "r"),         # the file narrows Exchange's write
    ("rw", "f", "f"),         # free/busy only
    ("f", "rw", "f"),
    ("RW", "R", "R"),
    ("R", "", ""),
    ("", "rw", ""),           # never widened
    ("irD", "r", "Dir"),      # other letters pass through; i where r is allowed
    ("iw", "f", ""),          # GET-only gives no free/busy; write not allowed
])
def test_narrow_never_widens(base, allowed, expected):
    got = narrow(base, allowed)
    assert sorted(got) == sorted(expected)
    assert set(got) <= set(base) | {"f"}
