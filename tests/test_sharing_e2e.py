"""Sharing end to end (issue 11) with the caldav library, in both modes of the gateway.

Each mode gets its own demo emulator and gateway (the tests change sharing):

* ``app``: htpasswd logins (password "demo"), the app-only token; the gateway reads the
  ``calendarPermissions`` of each served mailbox and enforces the roles itself.
* ``delegated``: ``[storage] mode = both``; Alice and Carol sign in with Microsoft and log in
  with their app passwords; Graph enforces the roles on their own tokens.

The demo tenant: Bob shares his primary calendar with Alice (``read``), Carol is his delegate
(``delegateWithPrivateEventAccess``), Bob has a private event "Gym"; room-adams's "My
Organization" role is ``limitedRead``, room-baker's ``freeBusyRead``; the group "Project Falcon
Team" has Alice and Bob as members.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin

import caldav
import icalendar
import pytest
import requests

from radicale_graph.emulator import demo

from .conftest import start_gateway
from .test_delegated import sign_in
from .test_end_to_end import graph_writes

ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"
CAROL = "carol@contoso.com"
GROUP = demo.GROUP
ROOM_ADAMS, ROOM_BAKER = demo.ROOMS
REFRESH = 1  # refresh_interval, seconds
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav"}

PRIVILEGES = """<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:current-user-privilege-set/></D:prop></D:propfind>"""
CALENDAR_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter>
  </C:filter>
</C:calendar-query>"""
FREE_BUSY_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
  <C:time-range start="{start:%Y%m%dT%H%M%SZ}" end="{end:%Y%m%dT%H%M%SZ}"/>
</C:free-busy-query>"""


@dataclass
class Env:
    """One mode's gateway on its own emulator, with the logins' passwords."""

    mode: str
    url: str
    emulator: object
    passwords: dict = field(default_factory=dict)
    _homes: dict = field(default_factory=dict)

    @property
    def delegated(self) -> bool:
        return self.mode == "delegated"

    def auth(self, login: str) -> tuple[str, str]:
        return login, self.passwords[login]

    def client(self, login: str) -> caldav.DAVClient:
        return caldav.DAVClient(url=f"{self.url}/{login}/", username=login,
                                password=self.passwords[login])

    def calendars(self, login: str, fresh: bool = True) -> dict[str, caldav.Calendar]:
        """Segment -> calendar of the login's home, as the caldav library discovers them
        (``fresh=False``: the last listing, to save the requests)."""
        if fresh or login not in self._homes:
            self._homes[login] = {segment_of(c): c
                                  for c in self.client(login).principal().calendars()}
        return self._homes[login]

    def shared(self, login: str, owner: str) -> caldav.Calendar:
        """``owner``'s calendar in ``login``'s home (the only one of that owner)."""
        home = self.calendars(login, fresh=False)
        found = [c for s, c in home.items() if s.startswith(f"{owner}~")]
        assert len(found) == 1, (owner, sorted(home))
        return found[0]

    def request(self, login: str, method: str, url: str, **kwargs) -> requests.Response:
        url = urljoin(self.url, str(url))
        return requests.request(method, url, auth=self.auth(login), timeout=30, **kwargs)


def segment_of(calendar) -> str:
    return unquote(str(calendar.url)).rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture(scope="module", params=["app", "delegated"])
def env(request, tmp_path_factory):
    from radicale_graph.emulator import Emulator

    with pytest.MonkeyPatch.context() as mp:
        # requests lets these override Session.verify (see conftest's emu fixture).
        mp.delenv("REQUESTS_CA_BUNDLE", raising=False)
        mp.delenv("CURL_CA_BUNDLE", raising=False)
        emulator = Emulator(load_demo=True)
        emulator.start()
        folder = tmp_path_factory.mktemp(f"sharing-{request.param}")
        try:
            if request.param == "app":
                gw, stop = start_gateway(emulator, folder, refresh_interval=REFRESH)
                passwords = {login: "demo" for login in (ALICE, BOB, CAROL)}
            else:
                gw, stop = start_gateway(emulator, folder, mode="both",
                                         refresh_interval=REFRESH)
                passwords = {login: sign_in(gw.url, emulator, login)[1]
                             for login in (ALICE, CAROL)}
            try:
                yield Env(request.param, gw.url, emulator, passwords)
            finally:
                stop()
        finally:
            emulator.stop()


def week() -> tuple[dt.datetime, dt.datetime]:
    """The demo's week (UTC), with a day of margin either side."""
    monday = demo.anchor()
    start = dt.datetime.combine(monday - dt.timedelta(days=1), dt.time(), dt.UTC)
    return start, start + dt.timedelta(days=9)


def vevent(summary: str, day: dt.date, *, uid: str | None = None, extra: str = "") -> str:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid or uuid.uuid4()}\r\nDTSTAMP:20260101T000000Z\r\n"
            f"DTSTART:{day:%Y%m%d}T130000Z\r\nDTEND:{day:%Y%m%d}T140000Z\r\n"
            f"SUMMARY:{summary}\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


def events_of(calendar) -> list:
    """The VEVENTs of a calendar (calendar-query over the demo's week)."""
    start, end = week()
    found = calendar.search(start=start, end=end, event=True, expand=False)
    return [component for event in found
            for component in icalendar.Calendar.from_ical(event.data).walk("VEVENT")]


def subjects_in(store, mailbox: str) -> set[str]:
    return {r.data.get("subject") for r in store.records(mailbox, None)}


def busy_periods(text: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """The periods of the FREEBUSY lines of a VFREEBUSY (UTC ``start/end`` or
    ``start/duration``; RFC 5545 section 3.8.2.6)."""
    unfolded = re.sub(r"\r?\n[ \t]", "", text)
    spans = []
    for line in re.findall(r"^FREEBUSY[^:]*:(.*?)\r?$", unfolded, flags=re.M):
        for period in line.split(","):
            first, second = period.strip().split("/")
            start = dt.datetime.strptime(first, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            if second.startswith(("P", "+P")):
                end = start + icalendar.vDuration.from_ical(second.lstrip("+"))
            else:
                end = dt.datetime.strptime(second, "%Y%m%dT%H%M%SZ").replace(
                    tzinfo=dt.UTC)
            spans.append((start, end))
    return spans


def privileges(env: Env, login: str, url) -> set[str]:
    response = env.request(login, "PROPFIND", url, data=PRIVILEGES,
                           headers={"Depth": "0", "Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    tree = ET.fromstring(response.content)
    found = set()
    for propstat in tree.findall("D:response/D:propstat", NS):
        if "200" not in propstat.find("D:status", NS).text:
            continue
        for privilege in propstat.findall("D:prop/D:current-user-privilege-set/D:privilege",
                                          NS):
            found.update(child.tag for child in privilege)
    return found


# -- 1. listing -----------------------------------------------------------------------------
def test_alice_lists_own_shared_room_and_group_calendars(env):
    names = {s: c.get_display_name() for s, c in env.calendars(ALICE).items()}
    own = {name for segment, name in names.items() if "~" not in segment}
    assert {"Calendar", "Project Falcon"} <= own, names
    bob = [name for segment, name in names.items() if segment.startswith(f"{BOB}~")]
    assert len(bob) == 1 and "Bob" in bob[0], names
    assert f"{ROOM_ADAMS}~calendar" in names and f"{ROOM_BAKER}~calendar" in names, names
    assert "Adams Conference Room" in names[f"{ROOM_ADAMS}~calendar"]
    assert "Baker Huddle Room" in names[f"{ROOM_BAKER}~calendar"]
    group = {s: n for s, n in names.items() if s.startswith(f"{GROUP}~")}
    if env.delegated:
        assert group == {f"{GROUP}~calendar": "Project Falcon Team"}, names
    else:
        assert group == {} and "Project Falcon Team" not in names.values(), names
    # Carol (Bob's delegate) has no share from Alice: none of Alice's calendars in her home.
    assert not any(s.startswith(f"{ALICE}~") for s in env.calendars(CAROL)), "Carol"


def test_another_home_is_refused_with_the_right_home(env):
    answer = env.request(ALICE, "PROPFIND", f"/{BOB}/", headers={"Depth": "1"})
    assert answer.status_code == 403, answer.text
    assert f"/{ALICE}/" in answer.text
    assert "BEGIN:VEVENT" not in answer.text


# -- 2. read-only share ---------------------------------------------------------------------
def test_bobs_calendar_is_read_only_for_alice_and_nothing_reaches_graph(env):
    store = env.emulator.store
    calendar = env.shared(ALICE, BOB)
    assert events_of(calendar), "Alice reads Bob's events"
    writes = len(graph_writes(env.emulator))
    bobs = subjects_in(store, BOB)
    day = demo.anchor() + dt.timedelta(days=3)
    with pytest.raises(caldav.lib.error.DAVError):
        calendar.save_event(vevent("Alice was here", day))
    uid = str(uuid.uuid4())
    raw = env.request(ALICE, "PUT", f"{calendar.url}{uid}.ics",
                      data=vevent("Alice was here", day, uid=uid).encode(),
                      headers={"Content-Type": "text/calendar"})
    assert raw.status_code == 403, raw.text
    assert "Bob Brown" in raw.text and BOB in raw.text, raw.text
    role = "reviewer" if env.delegated else "read"
    assert f"{role} (read-only)" in raw.text, raw.text
    assert len(graph_writes(env.emulator)) == writes, graph_writes(env.emulator)[writes:]
    assert subjects_in(store, BOB) == bobs
    assert "Alice was here" not in {str(e.get("SUMMARY")) for e in events_of(calendar)}


def test_alice_cannot_delete_or_change_bobs_events(env):
    calendar = env.shared(ALICE, BOB)
    found = calendar.search(start=week()[0], end=week()[1], event=True, expand=False)
    assert found
    writes = len(graph_writes(env.emulator))
    bobs = subjects_in(env.emulator.store, BOB)
    target = next(e for e in found if "SUMMARY:Busy" not in e.data)
    summary = str(icalendar.Calendar.from_ical(target.data).walk("VEVENT")[0]["SUMMARY"])
    changed = env.request(ALICE, "PUT", target.url,
                          data=target.data.replace(f"SUMMARY:{summary}",
                                                   "SUMMARY:Changed by Alice").encode(),
                          headers={"Content-Type": "text/calendar"})
    assert changed.status_code == 403, changed.text
    assert "Bob Brown" in changed.text
    deleted = env.request(ALICE, "DELETE", target.url)
    assert deleted.status_code == 403, deleted.text
    assert "Bob Brown" in deleted.text
    assert len(graph_writes(env.emulator)) == writes
    assert subjects_in(env.emulator.store, BOB) == bobs
    assert env.request(ALICE, "GET", target.url).status_code == 200


# -- 3. a delegate writes -------------------------------------------------------------------
def test_carol_writes_a_meeting_into_bobs_calendar_organized_by_bob(env):
    store = env.emulator.store
    calendar = env.shared(CAROL, BOB)
    subject = f"Budget sync {uuid.uuid4().hex[:6]}"
    day = demo.anchor() + dt.timedelta(days=3)
    uid = str(uuid.uuid4())
    saved = calendar.save_event(vevent(
        subject, day, uid=uid,
        extra=(f"ORGANIZER;CN=Carol Clark:mailto:{CAROL}\r\n"
               f"ATTENDEE;CN=Alice Archer;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;"
               f"RSVP=TRUE:mailto:{ALICE}\r\n")))
    written = [r.data for r in store.records(BOB, None) if r.data.get("subject") == subject]
    assert len(written) == 1, subjects_in(store, BOB)
    event = written[0]
    assert event["organizer"]["emailAddress"]["address"].lower() == BOB
    attendees = {a["emailAddress"]["address"].lower() for a in event.get("attendees", [])}
    assert ALICE in attendees and CAROL not in attendees, attendees
    assert subject not in subjects_in(store, CAROL)
    back = env.request(CAROL, "GET", saved.url)
    assert back.status_code == 200, back.text
    read = icalendar.Calendar.from_ical(back.text).walk("VEVENT")[0]
    assert str(read["UID"]) == uid
    assert str(read["ORGANIZER"]).lower() == f"mailto:{BOB}"
    listed = [e for e in events_of(calendar) if str(e.get("SUMMARY")) == subject]
    assert len(listed) == 1 and str(listed[0]["ORGANIZER"]).lower() == f"mailto:{BOB}"


# -- 4. private events ----------------------------------------------------------------------
def test_bobs_private_event_is_a_busy_block_for_alice(env):
    calendar = env.shared(ALICE, BOB)
    feed = env.request(ALICE, "GET", calendar.url)
    assert feed.status_code == 200, feed.text
    events = events_of(calendar)
    for text in (feed.text, *(e.to_ical().decode() for e in events)):
        assert "Gym" not in text and "Contoso Fitness" not in text and "Leg day" not in text
    private = [e for e in events if str(e.get("CLASS", "")) == "PRIVATE"]
    assert len(private) == 1, [str(e.get("SUMMARY")) for e in events]
    block = private[0]
    assert str(block["SUMMARY"]) == "Busy"
    for name in ("LOCATION", "DESCRIPTION", "ATTENDEE"):
        assert name not in block, block.to_ical()


def test_bobs_private_event_is_complete_for_carol(env):
    calendar = env.shared(CAROL, BOB)
    events = events_of(calendar)
    gym = [e for e in events if str(e.get("SUMMARY")) == "Gym"]
    assert len(gym) == 1, [str(e.get("SUMMARY")) for e in events]
    assert str(gym[0]["LOCATION"]) == "Contoso Fitness"
    assert "Leg day" in str(gym[0].get("DESCRIPTION", ""))
    assert str(gym[0].get("CLASS")) == "PRIVATE"


# -- 5. group calendar ----------------------------------------------------------------------
def test_alice_writes_into_the_group_calendar(env):
    if not env.delegated:
        listed = env.request(ALICE, "PROPFIND", f"/{ALICE}/{GROUP}~calendar/",
                             headers={"Depth": "0"})
        assert listed.status_code in (403, 404), listed.text
        return
    calendar = env.calendars(ALICE, fresh=False)[f"{GROUP}~calendar"]
    before = {str(e["SUMMARY"]) for e in events_of(calendar)}
    assert {"Falcon stand-up", "Falcon demo", "Falcon retro"} <= before, before
    subject = f"Falcon planning {uuid.uuid4().hex[:6]}"
    uid = str(uuid.uuid4())
    saved = calendar.save_event(vevent(subject, demo.anchor() + dt.timedelta(days=1), uid=uid))
    group_store = env.emulator.store.group_store
    assert subject in {r.data.get("subject") for r in group_store.records(GROUP, None)}
    assert subject not in subjects_in(env.emulator.store, ALICE)
    back = env.request(ALICE, "GET", saved.url)
    assert back.status_code == 200, back.text
    assert str(icalendar.Calendar.from_ical(back.text).walk("VEVENT")[0]["SUMMARY"]) == subject
    assert subject in {str(e["SUMMARY"]) for e in events_of(calendar)}


# -- 6. rooms -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def baker_booking(env):
    """A booking in room-baker's calendar (as Exchange would put it there), Wednesday
    15:00-16:00 UTC of the demo's week."""
    day = demo.anchor() + dt.timedelta(days=2)
    subject = f"Secret board meeting {env.mode}"
    env.emulator.store.create_event(ROOM_BAKER, None, {
        "subject": subject, "location": {"displayName": "Baker Huddle Room"},
        "body": {"contentType": "text", "content": "Acquisition talks."},
        "start": {"dateTime": f"{day}T15:00:00", "timeZone": "UTC"},
        "end": {"dateTime": f"{day}T16:00:00", "timeZone": "UTC"}})
    return subject, day


def test_room_baker_is_free_busy_only(env, baker_booking):
    subject, day = baker_booking
    url = f"/{ALICE}/{ROOM_BAKER}~calendar/"
    query = env.request(ALICE, "REPORT", url, data=CALENDAR_QUERY,
                        headers={"Depth": "1", "Content-Type": "application/xml"})
    assert query.status_code == 403, query.text
    assert subject not in query.text
    calendar = env.calendars(ALICE, fresh=False)[f"{ROOM_BAKER}~calendar"]
    with pytest.raises(caldav.lib.error.DAVError):
        calendar.search(start=week()[0], end=week()[1], event=True)
    feed = env.request(ALICE, "GET", url)
    assert feed.status_code == 403 and subject not in feed.text, feed.text
    start, end = week()
    answer = env.request(ALICE, "REPORT", url, data=FREE_BUSY_QUERY.format(start=start, end=end),
                         headers={"Depth": "1", "Content-Type": "application/xml"})
    assert answer.status_code == 200, answer.text
    assert subject not in answer.text and "Acquisition" not in answer.text
    assert answer.text.count("BEGIN:VFREEBUSY") == 1, answer.text
    booked = (dt.datetime.combine(day, dt.time(15), dt.UTC),
              dt.datetime.combine(day, dt.time(16), dt.UTC))
    spans = busy_periods(answer.text)
    assert any(s <= booked[0] and e >= booked[1] for s, e in spans), (spans, answer.text)


def test_room_adams_shows_titles_and_locations_only(env):
    calendar = env.calendars(ALICE, fresh=False)[f"{ROOM_ADAMS}~calendar"]
    events = events_of(calendar)
    review = [e for e in events if str(e.get("SUMMARY")) == "Project review"]
    assert len(review) == 1, [str(e.get("SUMMARY")) for e in events]
    assert "Adams Conference Room" in str(review[0].get("LOCATION", ""))
    # limitedRead: titles and locations only; not who booked the room nor who attends.
    for name in ("DESCRIPTION", "ATTENDEE", "ORGANIZER"):
        assert name not in review[0], review[0].to_ical().decode()


def test_room_adams_is_not_writable(env):
    calendar = env.calendars(ALICE, fresh=False)[f"{ROOM_ADAMS}~calendar"]
    writes = len(graph_writes(env.emulator))
    uid = str(uuid.uuid4())
    put = env.request(ALICE, "PUT", f"{calendar.url}{uid}.ics",
                      data=vevent("Squatting", demo.anchor(), uid=uid).encode(),
                      headers={"Content-Type": "text/calendar"})
    assert put.status_code == 403, put.text
    assert "Adams Conference Room" in put.text and ROOM_ADAMS in put.text, put.text
    # App-only: the gateway knows the role; delegated: Graph's copy says read-only.
    assert ("limitedRead" if not env.delegated else "read-only") in put.text, put.text
    assert len(graph_writes(env.emulator)) == writes
    assert "Squatting" not in subjects_in(env.emulator.store, ROOM_ADAMS)


# -- 8. privileges --------------------------------------------------------------------------
def test_privileges_say_read_only_and_free_busy_only(env):
    bob = privileges(env, ALICE, env.shared(ALICE, BOB).url)
    assert "{DAV:}read" in bob, bob
    assert not bob & {"{DAV:}write", "{DAV:}write-content", "{DAV:}bind", "{DAV:}unbind",
                      "{DAV:}all"}, bob
    baker = privileges(env, ALICE, f"/{ALICE}/{ROOM_BAKER}~calendar/")
    assert baker == {"{urn:ietf:params:xml:ns:caldav}read-free-busy"}, baker
    own = privileges(env, ALICE, f"/{ALICE}/calendar/")
    assert "{DAV:}read" in own and own & {"{DAV:}write", "{DAV:}write-content",
                                           "{DAV:}all"}, own
    carol = privileges(env, CAROL, env.shared(CAROL, BOB).url)
    assert carol & {"{DAV:}write", "{DAV:}write-content", "{DAV:}all"}, carol


# -- 7. revocation (last: it changes the share, and restores it) ----------------------------
def test_revoked_share_disappears_within_refresh_interval(env):
    store = env.emulator.store
    calendar = env.shared(ALICE, BOB)
    segment = segment_of(calendar)
    url = f"/{ALICE}/{segment}/"
    before = env.request(ALICE, "GET", url)
    assert before.status_code == 200 and "BEGIN:VEVENT" in before.text, before.text
    bobs = {s for s in subjects_in(store, BOB) if s and s != "Busy"}
    assert any(s in before.text for s in bobs), "Alice read Bob's events before"
    store.unshare(BOB, None, ALICE)
    try:
        time.sleep(REFRESH + 0.5)
        home = env.calendars(ALICE)
        assert not any(s.startswith(f"{BOB}~") for s in home), sorted(home)
        assert {"calendar", f"{ROOM_ADAMS}~calendar"} <= set(home), sorted(home)
        for method, kwargs in (("GET", {}),
                               ("PROPFIND", {"headers": {"Depth": "1"}}),
                               ("REPORT", {"data": CALENDAR_QUERY,
                                           "headers": {"Depth": "1",
                                                       "Content-Type": "application/xml"}})):
            answer = env.request(ALICE, method, url, **kwargs)
            assert answer.status_code in (403, 404), (method, answer.status_code, answer.text)
            assert "BEGIN:VEVENT" not in answer.text
            assert not any(s in answer.text for s in bobs), answer.text
        # Carol's delegation is untouched.
        assert env.request(CAROL, "GET", env.shared(CAROL, BOB).url).status_code == 200
    finally:
        store.share(BOB, None, ALICE, "read")
    # Shared again: the same calendar is back within refresh_interval.
    deadline = time.monotonic() + REFRESH + 3
    while (again := env.request(ALICE, "PROPFIND", url,
                                headers={"Depth": "0"})).status_code != 207:
        assert time.monotonic() < deadline, (again.status_code, again.text)
        time.sleep(0.3)


def test_module_tests_are_collected_for_both_modes(request):
    """Guard: the env fixture runs both modes (a typo in params would silently drop one)."""
    names = {item.name for item in request.session.items if item.module is request.module}
    for mode in ("app", "delegated"):
        assert any(re.search(rf"\[{mode}\]$", n) for n in names), names


def test_a_login_without_a_served_mailbox_cannot_create_calendars(env):
    """Carol's mailbox is not served in app mode: her home lists Bob's calendar only, and
    MKCALENDAR there is refused with the reason, writing nothing to Graph. Signed in with
    Microsoft (delegated), her own mailbox is hers: there she may."""
    before = len(graph_writes(env.emulator))
    answer = env.request(
        CAROL, "MKCALENDAR", f"/{CAROL}/new-one/",
        data='<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set>'
             '<D:prop><D:displayname>New</D:displayname></D:prop></D:set></C:mkcalendar>')
    if env.mode == "app":
        assert answer.status_code == 403, answer.text
        assert "not served" in answer.text
        assert len(graph_writes(env.emulator)) == before
    else:
        assert answer.status_code == 201, answer.text
        assert env.request(CAROL, "DELETE", f"/{CAROL}/new-one/").status_code in (200, 204)
