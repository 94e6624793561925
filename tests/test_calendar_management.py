"""Calendar management through the gateway: MKCALENDAR (RFC 4791 section 5.3.1), PROPPATCH of
displayname, calendar-color and dead properties (RFC 4918 section 9.2), DELETE of a calendar
(RFC 4918 section 9.6), through the caldav library and as Thunderbird sends them, against the
emulator's Graph (api/user-post-calendars.md, api/calendar-update.md, api/calendar-delete.md).

The gateway here is this module's own, so calendars made here disturb no other test; every
calendar made is deleted again.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import caldav
import pytest
from caldav.elements import dav

from radicale_graph.storage import colors

from .conftest import ALICE, BOB, start_gateway

MAILBOX = ALICE[0]
NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav", "I": "http://apple.com/ns/ical/",
      "G": "urn:radicale-graph"}

MKCALENDAR = """<?xml version="1.0" encoding="UTF-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"
    xmlns:I="http://apple.com/ns/ical/">
  <D:set><D:prop><D:displayname>{name}</D:displayname>
    <I:calendar-color>{color}</I:calendar-color></D:prop></D:set>
</C:mkcalendar>"""
PROPPATCH = """<?xml version="1.0" encoding="UTF-8"?>
<D:propertyupdate xmlns:D="DAV:" xmlns:I="http://apple.com/ns/ical/">
  <D:set><D:prop><I:calendar-color>{color}</I:calendar-color>
    <I:calendar-order>{order}</I:calendar-order></D:prop></D:set>
</D:propertyupdate>"""
PROPFIND = """<?xml version="1.0" encoding="UTF-8"?>
<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"
    xmlns:I="http://apple.com/ns/ical/">
  <D:prop><D:displayname/><D:resourcetype/><I:calendar-color/><I:calendar-order/>
    <C:calendar-description/></D:prop>
</D:propfind>"""


@pytest.fixture(scope="module")
def gw(emulator, tmp_path_factory):
    gateway, stop = start_gateway(emulator, tmp_path_factory.mktemp("calendar-management"),
                                  refresh_interval=1, calendar_list_interval=1)
    yield gateway
    stop()


@pytest.fixture
def cleanup(emulator):
    """Names of calendars a test made; any still in Graph afterwards are deleted."""
    names: list[str] = []
    yield names
    for calendar in emulator.store.calendars(MAILBOX):
        if calendar["name"] in names and not calendar["isDefaultCalendar"]:
            emulator.store.delete_calendar(MAILBOX, calendar["id"])


def graph_calendar(emulator, name: str) -> dict | None:
    return next((c for c in emulator.store.calendars(MAILBOX) if c["name"] == name), None)


def props(session, url: str) -> dict[str, str | None]:
    response = session.request("PROPFIND", url, data=PROPFIND,
                               headers={"Depth": "0", "Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    tree = ET.fromstring(response.content)
    found = {}
    for propstat in tree.findall("D:response/D:propstat", NS):
        if "200" not in propstat.find("D:status", NS).text:
            continue
        for prop in propstat.find("D:prop", NS):
            found[prop.tag] = prop.text
    return {"displayname": found.get("{DAV:}displayname"),
            "color": found.get("{http://apple.com/ns/ical/}calendar-color"),
            "order": found.get("{http://apple.com/ns/ical/}calendar-order"),
            "description": found.get("{urn:ietf:params:xml:ns:caldav}calendar-description")}


def client(gw, auth=ALICE) -> caldav.DAVClient:
    return caldav.DAVClient(url=gw.url + "/", username=auth[0], password=auth[1])


def segment_of(calendar) -> str:
    return unquote(str(calendar.url)).rstrip("/").rsplit("/", 1)[-1]


# -- colours ------------------------------------------------------------------------------
@pytest.mark.parametrize("text, value", [
    ("#FF0000FF", "lightRed"), ("#3A87AD", "lightBlue"), ("#00FF00", "lightGreen"),
    ("#808080", "lightGray"), ("#FFFF00", "lightYellow"), ("#FF8C00", "lightOrange"),
    ("#008080", "lightTeal"), ("#FF69B4", "lightPink"), ("#8B4513", "lightBrown"),
    ("#000080", "lightBlue"), ("#FFFFFF", "lightGray"), ("#DC143C", "lightRed"),
])
def test_nearest_calendar_color(text, value):
    assert colors.nearest(text) == value


def test_nearest_ignores_what_is_no_colour():
    assert colors.nearest("red") is None
    assert colors.nearest("") is None
    assert colors.shown("", "", "lightGreen", "") == colors.hex_of("lightGreen")
    assert colors.shown("#FF0000FF", "lightRed", "lightRed", "#f27c7c") == "#FF0000FF"
    assert colors.shown("#FF0000FF", "lightRed", "lightBlue", "#a0c3ff") == "#a0c3ff"


# -- through the caldav library -------------------------------------------------------------
def test_caldav_make_rename_delete(gw, emulator, cleanup):
    name = f"Library {uuid.uuid4().hex[:6]}"
    cleanup.append(name)
    principal = client(gw).principal()
    calendar = principal.make_calendar(name=name)  # the library picks the path (a UUID)
    made = graph_calendar(emulator, name)
    assert made is not None and not made["isDefaultCalendar"]
    listed = {segment_of(c): c.get_display_name() for c in principal.calendars()}
    assert listed[segment_of(calendar)] == name

    calendar.set_properties([dav.DisplayName(name + " renamed")])
    cleanup.append(name + " renamed")
    assert graph_calendar(emulator, name) is None
    assert graph_calendar(emulator, name + " renamed")["id"] == made["id"]
    assert calendar.get_display_name() == name + " renamed"

    # events work in the new calendar
    calendar.save_event(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uuid.uuid4()}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261210T100000Z\r\n"
        "DTEND:20261210T110000Z\r\nSUMMARY:In a new calendar\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n")
    assert [e.vobject_instance.vevent.summary.value for e in calendar.events()] == [
        "In a new calendar"]

    calendar.delete()
    assert all(c["id"] != made["id"] for c in emulator.store.calendars(MAILBOX))
    assert segment_of(calendar) not in {segment_of(c) for c in principal.calendars()}


def test_caldav_default_calendar_cannot_be_deleted(gw, emulator):
    default = next(c for c in emulator.store.calendars(MAILBOX) if c["isDefaultCalendar"])
    response = gw.session().delete(f"{gw.url}/{MAILBOX}/calendar/")
    assert response.status_code == 403
    assert f"the default calendar of {MAILBOX} cannot be deleted; Exchange keeps it" in \
        response.text
    assert any(c["id"] == default["id"] for c in emulator.store.calendars(MAILBOX))
    with pytest.raises(caldav.lib.error.DAVError):
        client(gw).calendar(url=f"{gw.url}/{MAILBOX}/calendar/").delete()


def test_caldav_make_calendar_without_name_uses_segment(gw, emulator, cleanup):
    segment = f"noname-{uuid.uuid4().hex[:6]}"
    cleanup.append(segment)
    response = gw.session().request("MKCALENDAR", f"{gw.url}/{MAILBOX}/{segment}/")
    assert response.status_code == 201, response.text
    assert graph_calendar(emulator, segment) is not None
    assert gw.session().delete(f"{gw.url}/{MAILBOX}/{segment}/").status_code in (200, 204)
    assert graph_calendar(emulator, segment) is None


# -- as Thunderbird sends them ----------------------------------------------------------
def test_thunderbird_mkcalendar_proppatch_delete(gw, emulator, cleanup):
    session = gw.session()
    segment = str(uuid.uuid4()).upper()  # Thunderbird names new calendars by a UUID
    name = f"Thunderbird {segment[:6]}"
    cleanup.append(name)
    url = f"{gw.url}/{MAILBOX}/{segment}/"
    response = session.request("MKCALENDAR", url,
                               data=MKCALENDAR.format(name=name, color="#FF0000FF"),
                               headers={"Content-Type": "application/xml; charset=utf-8"})
    assert response.status_code == 201, response.text
    made = graph_calendar(emulator, name)
    assert made["color"] == "lightRed"
    assert props(session, url)["color"] == "#FF0000FF"  # as the client wrote it

    response = session.request("PROPPATCH", url, data=PROPPATCH.format(color="#3A87AD",
                                                                       order="3"),
                               headers={"Content-Type": "application/xml; charset=utf-8"})
    assert response.status_code == 207, response.text
    assert "200" in response.text and "403" not in response.text
    assert graph_calendar(emulator, name)["color"] == "lightBlue"
    read = props(session, url)
    assert read["color"] == "#3A87AD" and read["order"] == "3"
    assert read["displayname"] == name

    # the c-<hash> name of the calendar serves it too
    from radicale_graph.storage.paths import calendar_name
    hashed = calendar_name({"id": made["id"]})
    assert props(session, f"{gw.url}/{MAILBOX}/{hashed}/")["order"] == "3"

    # Outlook changes the colour: Graph's colour is shown, not the client's stale string
    emulator.store.update_calendar(MAILBOX, made["id"], {"color": "lightGreen"})
    time.sleep(1.2)  # the module's calendar_list_interval
    read = props(session, url)
    assert read["color"] == colors.hex_of("lightGreen") and read["order"] == "3"
    read = _fresh_props(gw, session, url)  # a PROPPATCH of another property keeps it
    assert read["color"] == colors.hex_of("lightGreen") and read["order"] == "3"
    assert graph_calendar(emulator, name)["color"] == "lightGreen"

    response = session.delete(url)
    assert response.status_code in (200, 204), response.text
    assert graph_calendar(emulator, name) is None
    response = session.request("PROPFIND", url, data=PROPFIND, headers={"Depth": "0"})
    assert response.status_code == 404


def _fresh_props(gw, session, url):
    """Props after a PROPPATCH of a dead property only (C:calendar-description)."""
    response = session.request(
        "PROPPATCH", url,
        data=('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
              'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
              '<C:calendar-description>Kept</C:calendar-description>'
              '</D:prop></D:set></D:propertyupdate>'),
        headers={"Content-Type": "application/xml"})
    assert response.status_code == 207, response.text
    read = props(session, url)
    assert read["description"] == "Kept"
    return read


def test_thunderbird_mkcalendar_of_an_existing_name_is_refused(gw, emulator, cleanup):
    session = gw.session()
    name = f"Twice {uuid.uuid4().hex[:6]}"
    cleanup.append(name)
    first = f"{gw.url}/{MAILBOX}/{uuid.uuid4()}/"
    second = f"{gw.url}/{MAILBOX}/{uuid.uuid4()}/"
    body = MKCALENDAR.format(name=name, color="#00FF00")
    assert session.request("MKCALENDAR", first, data=body).status_code == 201
    response = session.request("MKCALENDAR", second, data=body)
    assert response.status_code == 403
    assert "ErrorFolderExists" in response.text and name in response.text
    assert [c["name"] for c in emulator.store.calendars(MAILBOX)].count(name) == 1
    assert session.delete(first).status_code in (200, 204)


def test_mkcalendar_of_other_mailbox_is_refused_by_rights(gw, emulator):
    before = len(emulator.store.calendars(BOB[0]))
    response = gw.session(ALICE).request(
        "MKCALENDAR", f"{gw.url}/{BOB[0]}/intruder/",
        data=MKCALENDAR.format(name="Intruder", color="#FF0000"))
    assert response.status_code == 403
    assert len(emulator.store.calendars(BOB[0])) == before
    response = gw.session(ALICE).delete(f"{gw.url}/{BOB[0]}/calendar/")
    assert response.status_code == 403


def test_proppatch_rename_and_component_set(gw, emulator, cleanup):
    session = gw.session()
    segment = f"tb-{uuid.uuid4().hex[:6]}"
    name = f"Renamed {segment}"
    cleanup.extend([segment, name])
    url = f"{gw.url}/{MAILBOX}/{segment}/"
    assert session.request("MKCALENDAR", url).status_code == 201
    response = session.request(
        "PROPPATCH", url,
        data=('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
              f'<D:displayname>{name}</D:displayname></D:prop></D:set></D:propertyupdate>'),
        headers={"Content-Type": "application/xml"})
    assert response.status_code == 207
    assert graph_calendar(emulator, name) is not None
    assert props(session, url)["displayname"] == name
    response = session.request(
        "PROPPATCH", url,
        data=('<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
              'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
              '<C:supported-calendar-component-set><C:comp name="VTODO"/>'
              '</C:supported-calendar-component-set></D:prop></D:set></D:propertyupdate>'),
        headers={"Content-Type": "application/xml"})
    assert response.status_code == 403
    assert "VEVENT" in response.text
    assert session.delete(url).status_code in (200, 204)
