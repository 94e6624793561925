"""Calendar sharing, delegation, groups and room lists on the emulator (docs/emulator.md,
"Sharing, delegation, groups and places"); the sources of each behaviour are in
``radicale_graph/emulator/sharing.py`` and ``graph_api.py``.

Demo tenant: Bob shares his primary calendar with Alice (read) and has Carol as delegate
(delegateWithPrivateEventAccess); Bob's "Gym" is private; the group "Project Falcon Team" has
Alice and Bob; the room list "Building 18" holds both rooms. "My Organization" is
``freeBusyRead`` everywhere but on room-adams's calendar (``limitedRead``).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from radicale_graph.emulator import demo, sharing

ALICE, BOB = demo.USERS
CAROL = demo.DELEGATES[0]
ADAMS, BAKER = demo.ROOMS
ORG = "RGVmYXVsdA=="
REDIRECT = "http://localhost:8123/.signin/callback"
SCOPES = "openid offline_access User.Read Calendars.ReadWrite Calendars.ReadWrite.Shared " \
         "Group.ReadWrite.All Place.Read.All"


class _Form(HTMLParser):
    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""


def _delegated_token(emu, login, scopes=SCOPES) -> str:
    """A delegated access token for ``login`` through the authorization code flow."""
    authorize = f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/authorize"
    params = {"client_id": demo.CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT,
              "scope": scopes, "state": "s"}
    page = requests.get(authorize, params=params, verify=emu.ca_file, timeout=30)
    assert page.status_code == 200, page.text
    form = _Form()
    form.feed(page.text)
    data = dict(form.fields, loginfmt=login, passwd=demo.USER_PASSWORDS[login])
    answer = requests.post(page.url, data=data, verify=emu.ca_file, timeout=30,
                           allow_redirects=False)
    assert answer.status_code == 302, answer.text
    code = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))["code"]
    result = requests.post(f"{emu.url}/{demo.TENANT_ID}/oauth2/v2.0/token", data={
        "client_id": demo.CLIENT_ID, "client_secret": demo.CLIENT_SECRET,
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "scope": scopes}, verify=emu.ca_file, timeout=30)
    assert result.status_code == 200, result.text
    return result.json()["access_token"]


@pytest.fixture(scope="module")
def as_user(emu):
    """``as_user(login)(method, path, **kwargs)``: Graph calls with ``login``'s token."""
    tokens: dict[str, str] = {}

    def make(login):
        if login not in tokens:
            tokens[login] = _delegated_token(emu, login)

        def call(method, path, headers=None, **kwargs):
            headers = {**(headers or {}), "Authorization": f"Bearer {tokens[login]}"}
            return requests.request(method, emu.graph_url + path, verify=emu.ca_file,
                                    timeout=30, headers=headers, **kwargs)
        return call

    return make


def _week(emu):
    mon = demo.anchor()
    end = mon + dt.timedelta(7)
    return {"startDateTime": f"{mon.isoformat()}T00:00:00Z",
            "endDateTime": f"{end.isoformat()}T00:00:00Z"}


def _gym(events):
    return [e for e in events if e["sensitivity"] == "private"]


# -- calendar permissions (owner) -------------------------------------------------------------


def test_list_calendar_permissions_of_bob(graph):
    # api/calendar-list-calendarpermissions.md: sharees then "My Organization".
    r = graph("GET", f"/users/{BOB}/calendar/calendarPermissions")
    assert r.status_code == 200, r.text
    perms = r.json()["value"]
    by_address = {p["emailAddress"].get("address"): p for p in perms}
    assert by_address[ALICE]["role"] == "read"
    assert by_address[CAROL]["role"] == "delegateWithPrivateEventAccess"
    org = perms[-1]
    assert org["id"] == "RGVmYXVsdA==" and org["isRemovable"] is False
    assert org["emailAddress"] == {"name": "My Organization"}
    assert set(by_address[ALICE]) == {"id", "isRemovable", "isInsideOrganization", "role",
                                      "allowedRoles", "emailAddress"}
    assert by_address[ALICE]["isInsideOrganization"] is True


def test_create_get_update_delete_calendar_permission(graph):
    # api/calendar-post-calendarpermissions.md (200 + entity), calendarpermission-update.md,
    # calendarpermission-delete.md.
    alice_cal = graph("GET", f"/users/{ALICE}/calendars").json()["value"][1]["id"]
    base = f"/users/{ALICE}/calendars/{alice_cal}/calendarPermissions"
    r = graph("POST", base, json={"emailAddress": {"name": "Samantha Booth",
                                                   "address": "samanthab@fabrikam.com"},
                                  "isInsideOrganization": False, "isRemovable": True,
                                  "role": "read"})
    assert r.status_code == 200, r.text
    perm = r.json()
    assert perm["allowedRoles"] == ["freeBusyRead", "limitedRead", "read"]
    assert graph("GET", f"{base}/{perm['id']}").json()["role"] == "read"
    r = graph("PATCH", f"{base}/{perm['id']}", json={"role": "limitedRead"})
    assert r.status_code == 200 and r.json()["role"] == "limitedRead"
    assert graph("PATCH", f"{base}/{perm['id']}", json={"isRemovable": False}).status_code == 400
    assert graph("DELETE", f"{base}/{perm['id']}").status_code == 204
    assert graph("GET", f"{base}/{perm['id']}").status_code == 404


def test_calendar_permission_body_is_checked_against_the_schema(graph):
    r = graph("POST", f"/users/{ALICE}/calendar/calendarPermissions",
              json={"emailAddress": {"address": BOB}, "role": "owner"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "RequestBodyRead"
    r = graph("POST", f"/users/{ALICE}/calendar/calendarPermissions",
              json={"emailAddress": {"address": BOB}, "role": "read", "colour": "red"})
    assert r.status_code == 400


def test_my_organization_is_not_removable(graph):
    r = graph("DELETE", f"/users/{BOB}/calendar/calendarPermissions/RGVmYXVsdA==")
    assert r.status_code == 403


def test_my_organization_role_can_be_updated(emu, graph):
    # resources/calendarpermission.md: only the role can be updated; allowedRoles of "My
    # Organization" (api/calendar-list-calendarpermissions.md): none .. write.
    base = f"/users/{ALICE}/calendar/calendarPermissions"
    try:
        r = graph("PATCH", f"{base}/{ORG}", json={"role": "limitedRead"})
        assert r.status_code == 200, r.text
        org = r.json()
        assert org["id"] == ORG and org["role"] == "limitedRead" and org["isRemovable"] is False
        assert org["allowedRoles"] == ["none", "freeBusyRead", "limitedRead", "read", "write"]
        assert org["emailAddress"] == {"name": "My Organization"}
        assert graph("GET", f"{base}/{ORG}").json()["role"] == "limitedRead"
        assert graph("GET", base).json()["value"][-1]["role"] == "limitedRead"
        assert emu.store.organization_role(ALICE, None) == "limitedRead"
        # Per calendar: Alice's other calendar and Bob's keep the default.
        falcon = graph("GET", f"/users/{ALICE}/calendars").json()["value"][1]["id"]
        other = graph("GET", f"/users/{ALICE}/calendars/{falcon}/calendarPermissions")
        assert other.json()["value"][-1]["role"] == "freeBusyRead"
        assert graph("GET", f"/users/{BOB}/calendar/calendarPermissions"
                     ).json()["value"][-1]["role"] == "freeBusyRead"
        for bad in ("delegateWithPrivateEventAccess", "delegateWithoutPrivateEventAccess"):
            r = graph("PATCH", f"{base}/{ORG}", json={"role": bad})
            assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorInvalidRequest"
        r = graph("PATCH", f"{base}/{ORG}", json={"isRemovable": True})
        assert r.status_code == 400
        assert graph("PATCH", f"{base}/{ORG}", json={"role": "none"}).json()["role"] == "none"
        assert graph("DELETE", f"{base}/{ORG}").status_code == 403
        assert graph("GET", base).json()["value"][-1]["role"] == "none"
    finally:
        emu.store.set_organization_role(ALICE, None, "freeBusyRead")
    assert graph("GET", f"{base}/{ORG}").json()["role"] == "freeBusyRead"


def test_set_organization_role_control(emu, graph):
    with pytest.raises(ValueError):
        emu.store.set_organization_role(ALICE, None, "delegateWithPrivateEventAccess")
    emu.store.set_organization_role(BOB, None, "read")
    try:
        perms = graph("GET", f"/users/{BOB}/calendar/calendarPermissions").json()["value"]
        assert perms[-1]["id"] == ORG and perms[-1]["role"] == "read"
    finally:
        emu.store.set_organization_role(BOB, None, "freeBusyRead")


def test_sharee_cannot_change_my_organization(as_user):
    r = as_user(ALICE)("PATCH", f"/users/{BOB}/calendar/calendarPermissions/{ORG}",
                       json={"role": "read"})
    assert r.status_code == 403


def test_role_of_falls_back_to_my_organization_inside_the_tenant(emu):
    store = emu.store
    # Explicit entries win; users of the tenant without one get "My Organization"'s role;
    # addresses outside the tenant get nothing.
    assert store.role_of(BOB, None, ALICE) == "read"
    assert store.role_of(BOB, None, CAROL) == "delegateWithPrivateEventAccess"
    assert store.role_of(ALICE, None, CAROL) == "freeBusyRead"
    assert store.role_of(ALICE, None, "newhire@contoso.com") == "freeBusyRead"
    assert store.role_of(ALICE, None, "samanthab@fabrikam.com") is None
    assert store.role_of(ADAMS, None, BOB) == "limitedRead"
    assert store.role_of(BAKER, None, BOB) == "freeBusyRead"
    store.set_organization_role(BOB, None, "write")
    store.set_organization_role(ALICE, None, "none")
    try:
        assert store.role_of(BOB, None, ALICE) == "read"
        assert store.role_of(ALICE, None, CAROL) is None
    finally:
        store.set_organization_role(BOB, None, "freeBusyRead")
        store.set_organization_role(ALICE, None, "freeBusyRead")
    # shared_with stays explicit-only (Outlook lists a calendar after an explicit share).
    assert [(b.upn, r) for b, _c, r in store.shared_with(CAROL)] == [
        (BOB, "delegateWithPrivateEventAccess")]
    assert all(b.upn != ADAMS for b, _c, _r in store.shared_with(ALICE))


def test_share_and_unshare_controls(emu, graph):
    pid = emu.share(ALICE, None, CAROL, "limitedRead")
    perms = graph("GET", f"/users/{ALICE}/calendar/calendarPermissions").json()["value"]
    assert any(p["id"] == pid and p["role"] == "limitedRead" for p in perms)
    emu.unshare(ALICE, None, CAROL)
    perms = graph("GET", f"/users/{ALICE}/calendar/calendarPermissions").json()["value"]
    assert not any(p["id"] == pid for p in perms)


# -- the sharee's view ------------------------------------------------------------------------


def test_sharee_me_calendars_lists_bobs_calendar_with_flags(as_user):
    # Seed 001: the copy has its own id, the owner's name, canShare false.
    cals = as_user(ALICE)("GET", "/me/calendars").json()["value"]
    shared = [c for c in cals if c["owner"]["address"] == BOB]
    assert len(shared) == 1
    cal = shared[0]
    assert cal["name"] == "Bob Brown"
    assert (cal["canEdit"], cal["canShare"], cal["canViewPrivateItems"]) == (False, False, False)
    carol = as_user(CAROL)("GET", "/me/calendars").json()["value"]
    bob = [c for c in carol if c["owner"]["address"] == BOB][0]
    assert (bob["canEdit"], bob["canShare"], bob["canViewPrivateItems"]) == (True, False, True)


def test_read_sharee_sees_private_event_without_its_information(emu, as_user):
    view = _week(emu)
    r = as_user(ALICE)("GET", f"/users/{BOB}/calendar/calendarView", params=view)
    assert r.status_code == 200, r.text
    gym = _gym(r.json()["value"])
    assert len(gym) == 1
    assert gym[0]["subject"] == "" and gym[0]["body"]["content"] == ""
    assert gym[0]["location"]["displayName"] == "" and gym[0]["attendees"] == []
    assert gym[0]["start"] and gym[0]["showAs"]


def test_delegate_with_private_access_sees_private_event(emu, as_user):
    r = as_user(CAROL)("GET", f"/users/{BOB}/calendar/calendarView", params=_week(emu))
    gym = _gym(r.json()["value"])
    assert gym[0]["subject"] == "Gym" and gym[0]["location"]["displayName"] == "Contoso Fitness"


def test_sharee_reads_through_the_copy_in_me_calendars(as_user):
    call = as_user(ALICE)
    copy_id = [c for c in call("GET", "/me/calendars").json()["value"]
               if c["owner"]["address"] == BOB][0]["id"]
    r = call("GET", f"/me/calendars/{copy_id}/events")
    assert r.status_code == 200, r.text
    subjects = {e["subject"] for e in r.json()["value"]}
    assert "Christmas dinner" in subjects and "Gym" not in subjects


def test_sharee_reads_through_the_owners_calendar_id(as_user):
    call = as_user(ALICE)
    cals = call("GET", f"/users/{BOB}/calendars").json()["value"]
    assert len(cals) == 1 and cals[0]["owner"]["address"] == BOB and not cals[0]["canShare"]
    r = call("GET", f"/users/{BOB}/calendars/{cals[0]['id']}/events")
    assert r.status_code == 200 and r.json()["value"]


def test_sharee_renames_only_the_copy(emu, as_user):
    call = as_user(ALICE)
    copy_id = [c for c in call("GET", "/me/calendars").json()["value"]
               if c["owner"]["address"] == BOB][0]["id"]
    r = call("PATCH", f"/me/calendars/{copy_id}", json={"name": "Bob (shared)"})
    assert r.status_code == 200 and r.json()["name"] == "Bob (shared)"
    assert emu.store.calendar(BOB, None)["name"] == "Calendar"
    call("PATCH", f"/me/calendars/{copy_id}", json={"name": "Bob Brown"})


def test_delegate_without_private_access_cannot_change_private_event(emu, as_user, graph):
    emu.share(BOB, None, CAROL, "delegateWithoutPrivateEventAccess")
    try:
        gym = _gym(graph("GET", f"/users/{BOB}/calendar/events").json()["value"])[0]
        r = as_user(CAROL)("PATCH", f"/users/{BOB}/calendar/events/{gym['id']}",
                           json={"subject": "Not gym"})
        assert r.status_code == 403
        shown = as_user(CAROL)("GET", f"/users/{BOB}/calendar/events/{gym['id']}").json()
        assert shown["subject"] == ""
    finally:
        emu.share(BOB, None, CAROL, "delegateWithPrivateEventAccess")


def test_read_sharee_cannot_write(as_user):
    call = as_user(ALICE)
    r = call("POST", f"/users/{BOB}/calendar/events", json={
        "subject": "x", "start": {"dateTime": "2030-01-01T10:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-01T11:00:00", "timeZone": "UTC"}})
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_delegate_creates_event_organized_by_owner(as_user):
    call = as_user(CAROL)
    r = call("POST", f"/users/{BOB}/calendar/events", json={
        "subject": "Dinner on Bob's behalf",
        "start": {"dateTime": "2030-01-02T18:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-02T19:00:00", "timeZone": "UTC"}})
    assert r.status_code == 201, r.text
    assert r.json()["organizer"]["emailAddress"]["address"] == BOB
    assert call("DELETE", f"/users/{BOB}/calendar/events/{r.json()['id']}").status_code == 204


def test_limited_read_shows_subject_and_location_only(emu, as_user):
    emu.share(BOB, None, ALICE, "limitedRead")
    try:
        events = as_user(ALICE)("GET", f"/users/{BOB}/calendar/events").json()["value"]
        dinner = [e for e in events if e["subject"] == "Christmas dinner"][0]
        assert dinner["location"]["displayName"] and dinner["body"]["content"] == ""
        assert dinner["attendees"] == []
    finally:
        emu.share(BOB, None, ALICE, "read")


def test_free_busy_read_lists_no_events(emu, as_user):
    emu.share(BOB, None, ALICE, "freeBusyRead")
    try:
        r = as_user(ALICE)("GET", f"/users/{BOB}/calendar/events")
        assert r.status_code == 403
    finally:
        emu.share(BOB, None, ALICE, "read")


def test_user_without_permission_is_denied(as_user):
    r = as_user(CAROL)("GET", f"/users/{ALICE}/calendar/events")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_revoked_sharee_loses_access(emu, as_user):
    emu.unshare(BOB, None, ALICE)
    try:
        assert as_user(ALICE)("GET", f"/users/{BOB}/calendar/events").status_code == 403
    finally:
        emu.share(BOB, None, ALICE, "read")


def test_sharee_gets_empty_calendar_permissions(as_user):
    # resources/calendarpermission.md: on behalf of a recipient, an empty collection.
    r = as_user(ALICE)("GET", f"/users/{BOB}/calendar/calendarPermissions")
    assert r.status_code == 200 and r.json()["value"] == []


def test_app_only_sees_private_event_in_full(emu, graph):
    events = graph("GET", f"/users/{BOB}/calendar/calendarView", params=_week(emu)).json()
    assert _gym(events["value"])[0]["subject"] == "Gym"


# -- "My Organization" as a sharee's role ---------------------------------------------------


def _alice_event(graph, subject):
    events = graph("GET", f"/users/{ALICE}/calendar/events", params={"$top": 50}).json()
    return [e for e in events["value"] if e["subject"] == subject][0]


def test_my_organization_limited_read_on_every_sharee_path(emu, as_user, graph):
    # Carol has no entry on Alice's calendar: "My Organization" (limitedRead) applies.
    call = as_user(CAROL)
    meeting = _alice_event(graph, "Project review")
    cid = emu.store.calendar(ALICE, None)["id"]
    emu.store.set_organization_role(ALICE, None, "limitedRead")
    try:
        r = call("GET", f"/users/{ALICE}/calendar")
        assert r.status_code == 200, r.text
        cal = r.json()
        assert cal["owner"]["address"] == ALICE and cal["canEdit"] is False
        assert cal["canShare"] is False and cal["canViewPrivateItems"] is False
        lists = {
            "events": call("GET", f"/users/{ALICE}/calendar/events", params={"$top": 50}),
            "view": call("GET", f"/users/{ALICE}/calendar/calendarView", params=_week(emu)),
            "delta": call("GET", f"/users/{ALICE}/calendar/calendarView/delta",
                          params=_week(emu)),
        }
        for name, answer in lists.items():
            assert answer.status_code == 200, (name, answer.text)
            found = [e for e in answer.json()["value"] if e.get("subject") == "Project review"]
            assert found, name
            assert found[0]["location"]["displayName"] == "Adams Conference Room", name
            assert found[0]["body"]["content"] == "" and found[0]["attendees"] == [], name
        for path in (f"/users/{ALICE}/calendar/events/{meeting['id']}",
                     f"/users/{ALICE}/calendars/{cid}/events/{meeting['id']}"):
            r = call("GET", path)
            assert r.status_code == 200, (path, r.text)
            one = r.json()
            assert one["subject"] == "Project review" and one["attendees"] == []
            assert one["location"]["displayName"] == "Adams Conference Room"
            assert one["body"]["content"] == "" and one["bodyPreview"] == ""
        # Private items keep none of their information; writes need a write role.
        dentist = [e for e in lists["view"].json()["value"] if e["sensitivity"] == "private"]
        assert dentist and dentist[0]["subject"] == ""
        r = call("PATCH", f"/users/{ALICE}/calendar/events/{meeting['id']}",
                 json={"subject": "x"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
        # The org-wide role does not add Alice's calendar to Carol's list.
        owners = {c["owner"]["address"] for c in call("GET", "/me/calendars").json()["value"]}
        assert ALICE not in owners
        assert call("GET", f"/users/{ALICE}/calendars").status_code == 403
    finally:
        emu.store.set_organization_role(ALICE, None, "freeBusyRead")


def test_my_organization_free_busy_read_allows_the_calendar_only(emu, as_user, graph):
    call = as_user(CAROL)
    meeting = _alice_event(graph, "Project review")
    cid = emu.store.calendar(ALICE, None)["id"]
    r = call("GET", f"/users/{ALICE}/calendar")
    assert r.status_code == 200 and r.json()["owner"]["address"] == ALICE
    for path, params in ((f"/users/{ALICE}/calendar/events", None),
                         (f"/users/{ALICE}/calendar/events/{meeting['id']}", None),
                         (f"/users/{ALICE}/calendars/{cid}/events/{meeting['id']}", None),
                         (f"/users/{ALICE}/calendar/calendarView", _week(emu)),
                         (f"/users/{ALICE}/calendar/calendarView/delta", _week(emu))):
        r = call("GET", path, params=params)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "ErrorAccessDenied"


def test_my_organization_none_denies_the_calendar(emu, as_user):
    emu.store.set_organization_role(ALICE, None, "none")
    try:
        r = as_user(CAROL)("GET", f"/users/{ALICE}/calendar")
        assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    finally:
        emu.store.set_organization_role(ALICE, None, "freeBusyRead")


def test_my_organization_patched_over_http_takes_effect(emu, as_user):
    # The owner changes the role with PATCH (own token); the next request of a colleague
    # sees it.
    owner, carol = as_user(ALICE), as_user(CAROL)
    url = f"/me/calendar/calendarPermissions/{ORG}"
    try:
        r = owner("PATCH", url, json={"role": "read"})
        assert r.status_code == 200 and r.json()["role"] == "read"
        events = carol("GET", f"/users/{ALICE}/calendar/events", params={"$top": 50})
        assert events.status_code == 200
        review = [e for e in events.json()["value"] if e["subject"] == "Project review"][0]
        assert review["attendees"]
    finally:
        owner("PATCH", url, json={"role": "freeBusyRead"})
    assert carol("GET", f"/users/{ALICE}/calendar/events").status_code == 403


def test_demo_room_calendars_my_organization(emu, as_user, graph):
    # demo.py: room-adams limitedRead (titles and locations), room-baker freeBusyRead.
    perms = graph("GET", f"/users/{ADAMS}/calendar/calendarPermissions").json()["value"]
    assert perms[-1]["id"] == ORG and perms[-1]["role"] == "limitedRead"
    perms = graph("GET", f"/users/{BAKER}/calendar/calendarPermissions").json()["value"]
    assert perms[-1]["id"] == ORG and perms[-1]["role"] == "freeBusyRead"
    call = as_user(BOB)
    r = call("GET", f"/users/{ADAMS}/calendar/calendarView", params=_week(emu))
    assert r.status_code == 200, r.text
    review = [e for e in r.json()["value"] if e["subject"] == "Project review"][0]
    assert review["location"]["displayName"] == "Adams Conference Room"
    assert review["attendees"] == [] and review["body"]["content"] == ""
    r = call("GET", f"/users/{ADAMS}/calendar/events/{review['id']}")
    assert r.status_code == 200 and r.json()["subject"] == "Project review"
    r = call("GET", f"/users/{ADAMS}/calendar/calendarView/delta", params=_week(emu))
    assert r.status_code == 200 and any(e.get("subject") == "Project review"
                                        for e in r.json()["value"])
    assert call("GET", f"/users/{BAKER}/calendar").status_code == 200
    r = call("GET", f"/users/{BAKER}/calendar/events")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"
    # Rooms are not in anyone's calendar list without an explicit share.
    owners = {c["owner"]["address"] for c in call("GET", "/me/calendars").json()["value"]}
    assert ADAMS not in owners and BAKER not in owners
    # getSchedule follows the same role: room-adams with subjects, room-baker without.
    adams, baker = _schedule(call, [ADAMS, BAKER], emu).json()["value"]
    assert any(i.get("subject") == "Project review" for i in adams["scheduleItems"])
    assert all(set(i) == {"status", "start", "end"} for i in baker["scheduleItems"])


# -- delegate and sharee paths of seed 001 ------------------------------------------------------


def _bobs_copy(call):
    return [c for c in call("GET", "/me/calendars").json()["value"]
            if c["owner"]["address"] == BOB][0]["id"]


def _seed_step2_body(day):
    # concepts/outlook-create-event-in-shared-delegated-calendar.md, step 2's request body.
    path = sharing.__file__.rsplit("/", 1)[0] + \
        "/data/outlook-create-event-in-shared-delegated-calendar__2__request.json"
    with open(path, encoding="utf-8") as handle:
        body = json.load(handle)
    body = copy.deepcopy(body)
    body["start"]["dateTime"] = f"{day}T18:00:00"
    body["end"]["dateTime"] = f"{day}T22:00:00"
    return body


def test_delegate_creates_through_the_copy_and_the_owners_calendar(as_user, graph):
    # Seed 001, step 2: Adele (delegate) POSTs to /me/calendars/{copy}/events; the event is
    # organized by Alex (the owner). Same through /users/{owner}/calendar/events.
    call = as_user(CAROL)
    headers = {"Prefer": 'outlook.timezone="Pacific Standard Time"'}
    made = []
    try:
        for path, day in ((f"/me/calendars/{_bobs_copy(call)}/events", "2030-12-24"),
                          (f"/users/{BOB}/calendar/events", "2030-12-26")):
            r = call("POST", path, json=_seed_step2_body(day), headers=headers)
            assert r.status_code == 201, (path, r.text)
            event = r.json()
            made.append(event["id"])
            assert event["organizer"]["emailAddress"]["address"] == BOB, path
            assert event["organizer"]["emailAddress"]["name"] == "Bob Brown", path
            assert event["subject"] == "Christmas dinner"
            assert event["start"]["timeZone"] == "Pacific Standard Time"
            # It is in Bob's mailbox, organized by Bob.
            mine = graph("GET", f"/users/{BOB}/calendar/events/{event['id']}")
            assert mine.status_code == 200, mine.text
            assert mine.json()["organizer"]["emailAddress"]["address"] == BOB
            assert mine.json()["isOrganizer"] is True
    finally:
        for eid in made:
            graph("DELETE", f"/users/{BOB}/events/{eid}")


def test_delegate_gets_updates_deletes_by_id_through_the_copy(as_user, graph):
    call = as_user(CAROL)
    base = f"/me/calendars/{_bobs_copy(call)}/events"
    r = call("POST", base, json={
        "subject": "Board prep", "location": {"displayName": "Bob's office"},
        "start": {"dateTime": "2030-01-03T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-01-03T10:00:00", "timeZone": "UTC"}})
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    r = call("GET", f"{base}/{eid}")
    assert r.status_code == 200 and r.json()["subject"] == "Board prep"
    r = call("PATCH", f"{base}/{eid}", json={"subject": "Board prep (moved)"})
    assert r.status_code == 200 and r.json()["subject"] == "Board prep (moved)"
    assert graph("GET", f"/users/{BOB}/events/{eid}").json()["subject"] == "Board prep (moved)"
    assert call("DELETE", f"{base}/{eid}").status_code == 204
    listed = graph("GET", f"/users/{BOB}/calendar/events", params={"$top": 50}).json()["value"]
    assert eid not in {e["id"] for e in listed}
    # Bob's private Gym, as seen by his delegate with private access, through the copy.
    gym = _gym(graph("GET", f"/users/{BOB}/calendar/events").json()["value"])[0]
    assert call("GET", f"{base}/{gym['id']}").json()["subject"] == "Gym"


def test_read_sharee_calendar_view_delta_redacts_private(emu, as_user):
    call = as_user(ALICE)
    r = call("GET", f"/users/{BOB}/calendar/calendarView/delta", params=_week(emu))
    assert r.status_code == 200, r.text
    body = r.json()
    events = list(body["value"])
    while "@odata.nextLink" in body:
        body = call("GET", body["@odata.nextLink"][len(emu.graph_url):]).json()
        events += body["value"]
    assert "@odata.deltaLink" in body
    gym = _gym(events)
    assert len(gym) == 1
    assert gym[0]["subject"] == "" and gym[0]["body"]["content"] == ""
    assert gym[0]["location"]["displayName"] == "" and gym[0]["start"]
    # A read sharee cannot write, whatever the path.
    r = call("PATCH", f"/users/{BOB}/calendar/events/{gym[0]['id']}", json={"subject": "x"})
    assert r.status_code == 403


# -- free/busy --------------------------------------------------------------------------------


def _schedule(call, addresses, emu, **extra):
    week = _week(emu)
    return call("POST", "/me/calendar/getSchedule", json={
        "schedules": addresses, "availabilityViewInterval": 60,
        "startTime": {"dateTime": week["startDateTime"][:19], "timeZone": "UTC"},
        "endTime": {"dateTime": week["endDateTime"][:19], "timeZone": "UTC"}, **extra})


def test_get_schedule_by_role(emu, as_user):
    # api/calendar-getschedule.md: details where the caller may read them, else status only.
    r = _schedule(as_user(ALICE), [BOB, CAROL, "nobody@fabrikam.com"], emu)
    assert r.status_code == 200, r.text
    bob, carol, nobody = r.json()["value"]
    assert len(bob["availabilityView"]) == 7 * 24 and "2" in bob["availabilityView"]
    gym = [i for i in bob["scheduleItems"] if i.get("isPrivate")]
    assert gym and "subject" not in gym[0] and gym[0]["status"] == "busy"
    assert all(set(i) == {"status", "start", "end"} for i in carol["scheduleItems"])
    assert nobody["error"]["responseCode"]
    items = _schedule(as_user(CAROL), [BOB], emu).json()["value"][0]["scheduleItems"]
    assert any(i.get("subject") == "Gym" and i["isPrivate"] for i in items)


def test_free_busy_read_gets_free_busy_only(emu, as_user):
    emu.share(BOB, None, ALICE, "freeBusyRead")
    try:
        items = _schedule(as_user(ALICE), [BOB], emu).json()["value"][0]["scheduleItems"]
        assert items and all(set(i) == {"status", "start", "end"} for i in items)
    finally:
        emu.share(BOB, None, ALICE, "read")


def test_get_schedule_period_limit(as_user):
    r = as_user(ALICE)("POST", "/me/calendar/getSchedule", json={
        "schedules": [BOB], "startTime": {"dateTime": "2030-01-01T00:00:00", "timeZone": "UTC"},
        "endTime": {"dateTime": "2030-03-15T00:00:00", "timeZone": "UTC"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "ErrorTimeIntervalTooBig"


# -- groups -----------------------------------------------------------------------------------


def test_groups_and_members(graph):
    groups = graph("GET", "/groups").json()["value"]
    falcon = [g for g in groups if g["mail"] == demo.GROUP][0]
    assert falcon["displayName"] == "Project Falcon Team" and falcon["groupTypes"] == ["Unified"]
    assert graph("GET", f"/groups/{falcon['id']}").json()["id"] == falcon["id"]
    members = graph("GET", f"/groups/{falcon['id']}/members").json()["value"]
    assert {m["userPrincipalName"] for m in members} == {ALICE, BOB}


def test_me_member_of(as_user):
    groups = as_user(ALICE)("GET", "/me/memberOf").json()["value"]
    assert [g["mail"] for g in groups] == [demo.GROUP]
    assert groups[0]["@odata.type"] == "#microsoft.graph.group"
    assert as_user(CAROL)("GET", "/me/memberOf").json()["value"] == []


def test_group_calendar_for_members(as_user):
    call = as_user(ALICE)
    gid = call("GET", "/me/memberOf").json()["value"][0]["id"]
    assert call("GET", f"/groups/{gid}/calendar").status_code == 200
    events = call("GET", f"/groups/{gid}/calendar/events").json()["value"]
    assert {e["subject"] for e in events} == {"Falcon stand-up", "Falcon demo", "Falcon retro"}
    assert len(call("GET", f"/groups/{gid}/events").json()["value"]) == 3


def test_group_calendar_refused_to_non_members_and_app_only(graph, as_user):
    gid = [g for g in graph("GET", "/groups").json()["value"] if g["mail"] == demo.GROUP][0]["id"]
    assert as_user(CAROL)("GET", f"/groups/{gid}/calendar/events").status_code == 403
    r = graph("GET", f"/groups/{gid}/calendar/events")
    assert r.status_code == 403 and r.json()["error"]["code"] == "ErrorAccessDenied"


def test_group_id_in_users_path(graph):
    gid = [g for g in graph("GET", "/groups").json()["value"] if g["mail"] == demo.GROUP][0]["id"]
    r = graph("GET", f"/users/{gid}/calendar/events")
    assert r.json()["error"]["code"] == "ErrorGroupIsUsedInNonGroupURI"


# -- places -----------------------------------------------------------------------------------


def test_room_lists_and_their_rooms(graph):
    lists = graph("GET", "/places/microsoft.graph.roomlist").json()["value"]
    assert [r["emailAddress"] for r in lists] == [demo.ROOM_LIST]
    assert "rooms" not in lists[0]
    r = graph("GET", f"/places/{demo.ROOM_LIST}/microsoft.graph.roomlist/rooms")
    assert r.status_code == 200
    assert [p["emailAddress"] for p in r.json()["value"]] == list(demo.ROOMS)
    assert graph("GET", "/places/nowhere@contoso.com/microsoft.graph.roomlist/rooms"
                 ).status_code == 404
