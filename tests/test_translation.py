"""Translation unit tests: iCalendar -> Graph bodies -> iCalendar, without I/O."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr

from radicale_graph.translation import UnsupportedObject, event_plan, to_resource
from radicale_graph.translation.recurrence import recurrence_to_rrule, rrule_to_recurrence
from radicale_graph.translation.timezones import (
    graph_from_iana,
    iana_from_graph,
    match_by_rules,
    tzinfo_name,
)

OUTLOOK_ZONE = """BEGIN:VTIMEZONE
TZID:(UTC+01:00) Amsterdam\\, Berlin\\, Bern\\, Rome\\, Stockholm\\, Vienna
BEGIN:STANDARD
DTSTART:16010101T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010101T020000
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
END:VTIMEZONE
"""
OUTLOOK_TZID = '"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"'

ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
{tz}BEGIN:VEVENT
UID:{uid}
DTSTAMP:20261101T000000Z
{body}
END:VEVENT
{extra}END:VCALENDAR
"""


def ics(body: str, uid: str = "u1@example.com", extra: str = "", tz: str = "") -> str:
    return ICS.format(body=body.strip(), uid=uid, extra=extra, tz=tz).replace("\n", "\r\n")


def as_stored(body: dict, event_id: str = "AAMk-1") -> dict:
    """What Graph returns for a POSTed body (the fields the translation reads)."""
    event = {k: v for k, v in body.items() if k != "transactionId"}
    event.update(id=event_id, changeKey="ck1", iCalUId="040000008200E00074C5B7101A82E008",
                 originalStartTimeZone=body["start"]["timeZone"],
                 originalEndTimeZone=body["end"]["timeZone"],
                 lastModifiedDateTime="2026-11-01T10:00:00Z",
                 createdDateTime="2026-11-01T10:00:00Z", isOrganizer=True,
                 type="seriesMaster" if "recurrence" in body else "singleInstance")
    return event


def roundtrip(text: str, href: str = "a.ics") -> icalendar.Calendar:
    plan = event_plan(text, href)
    resource = to_resource(as_stored(plan.master))
    assert resource.href == href
    return icalendar.Calendar.from_ical(resource.text)


def test_zoned_event_keeps_instant_zone_and_content():
    cal = roundtrip(ics("""DTSTART;TZID=Europe/Berlin:20261124T093000
DTEND;TZID=Europe/Berlin:20261124T103000
SUMMARY:Planning
DESCRIPTION:Line one\\nLine two
LOCATION:Room 1"""))
    event = cal.walk("VEVENT")[0]
    assert str(event["UID"]) == "u1@example.com"
    assert event.decoded("DTSTART") == dt.datetime(2026, 11, 24, 9, 30,
                                                   tzinfo=ZoneInfo("Europe/Berlin"))
    assert event.decoded("DTEND") - event.decoded("DTSTART") == dt.timedelta(hours=1)
    assert str(event["SUMMARY"]) == "Planning"
    assert str(event["DESCRIPTION"]) == "Line one\nLine two"
    assert str(event["LOCATION"]) == "Room 1"
    assert [tz["TZID"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]


def test_graph_body_uses_windows_zone_names():
    plan = event_plan(ics("""DTSTART;TZID=America/New_York:20261124T093000
DTEND;TZID=America/New_York:20261124T103000"""), "a.ics")
    assert plan.master["start"] == {"dateTime": "2026-11-24T09:30:00",
                                    "timeZone": "Eastern Standard Time"}


def test_all_day_multi_day():
    plan = event_plan(ics("DTSTART;VALUE=DATE:20261124\nDTEND;VALUE=DATE:20261127"), "a.ics")
    assert plan.master["isAllDay"] is True
    assert plan.master["start"]["dateTime"] == "2026-11-24T00:00:00"
    assert plan.master["end"]["dateTime"] == "2026-11-27T00:00:00"
    event = icalendar.Calendar.from_ical(to_resource(as_stored(plan.master)).text).walk(
        "VEVENT")[0]
    assert event.decoded("DTSTART") == dt.date(2026, 11, 24)
    assert event.decoded("DTEND") == dt.date(2026, 11, 27)


def test_utc_event_stays_utc_and_keeps_its_duration():
    text = ics("DTSTART:20261124T093000Z\nDURATION:PT45M")
    plan = event_plan(text, "a.ics")
    assert plan.master["end"] == {"dateTime": "2026-11-24T10:15:00", "timeZone": "UTC"}
    event = roundtrip(text).walk("VEVENT")[0]
    assert event.decoded("DTSTART") == dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.UTC)
    assert event.decoded("DURATION") == dt.timedelta(minutes=45)  # the client's own form


def test_people_roles_and_partstat():
    plan = event_plan(ics("""DTSTART:20261124T093000Z
DTEND:20261124T103000Z
ORGANIZER;CN=Alice:mailto:alice@contoso.com
ATTENDEE;CN=Bob;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bob@contoso.com
ATTENDEE;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE:mailto:eve@example.com
ATTENDEE;CUTYPE=ROOM;CN=Adams:mailto:room-adams@contoso.com"""), "a.ics")
    assert "organizer" not in plan.master  # Graph sets it: the mailbox owner
    assert plan.organizer == "alice@contoso.com"
    types = [(a["emailAddress"]["address"], a["type"], a["status"]["response"])
             for a in plan.master["attendees"]]
    assert types == [("bob@contoso.com", "required", "accepted"),
                     ("eve@example.com", "optional", "tentativelyAccepted"),
                     ("room-adams@contoso.com", "resource", "none")]
    stored = as_stored(plan.master)
    stored["organizer"] = {"emailAddress": {"address": "alice@contoso.com", "name": "Alice"}}
    event = icalendar.Calendar.from_ical(
        to_resource(stored, rooms=frozenset({"room-adams@contoso.com"})).text).walk("VEVENT")[0]
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    assert attendees["mailto:bob@contoso.com"]["PARTSTAT"] == "ACCEPTED"
    assert attendees["mailto:bob@contoso.com"]["CN"] == "Bob"
    assert attendees["mailto:eve@example.com"]["ROLE"] == "OPT-PARTICIPANT"
    assert attendees["mailto:room-adams@contoso.com"]["CUTYPE"] == "ROOM"
    assert str(event["ORGANIZER"]) == "mailto:alice@contoso.com"


@pytest.mark.parametrize("rule", [
    "FREQ=WEEKLY;BYDAY=TU,TH",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO;COUNT=10",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=SU;COUNT=8",
    "FREQ=DAILY;INTERVAL=3;COUNT=7",
    "FREQ=MONTHLY;BYMONTHDAY=24",
    "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=YEARLY;BYMONTH=11;BYDAY=4TU",
    "FREQ=YEARLY",
    "FREQ=WEEKLY;BYDAY=TU;UNTIL=20270302T083000Z",
])
def test_rrule_roundtrip_gives_same_occurrences(rule):
    tz = ZoneInfo("Europe/Berlin")
    start = dt.datetime(2026, 11, 24, 9, 30, tzinfo=tz)
    if "BYDAY=-1FR" in rule:
        start = dt.datetime(2026, 11, 27, 9, 30, tzinfo=tz)
    if "BYSETPOS=-1" in rule:
        start = dt.datetime(2026, 11, 30, 9, 30, tzinfo=tz)
    parts = icalendar.vRecur.from_ical(rule)
    recurrence = rrule_to_recurrence(dict(parts), start, "Europe/Berlin")
    back = icalendar.vRecur(recurrence_to_rrule(recurrence, start)).to_ical().decode()
    window = start + dt.timedelta(days=3 * 366)
    expected = list(rrulestr(rule, dtstart=start).between(start, window, inc=True))
    actual = list(rrulestr(back, dtstart=start).between(start, window, inc=True))
    assert actual == expected
    assert expected


@pytest.mark.parametrize("body, construct", [
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=HOURLY", "FREQ=HOURLY"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=YEARLY;BYWEEKNO=20", "BYWEEKNO"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=YEARLY;BYYEARDAY=100", "BYYEARDAY"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=1,15", "several values"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=MONTHLY;BYDAY=5TU", "position 5"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=WEEKLY\nRDATE:20261225T093000Z", "RDATE"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=WEEKLY\nEXRULE:FREQ=MONTHLY", "EXRULE"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=31", "BYMONTHDAY=31"),
])
def test_inexpressible_constructs_are_refused_by_name(body, construct):
    with pytest.raises(UnsupportedObject) as info:
        event_plan(ics(body), "a.ics")
    assert construct in str(info.value)
    assert info.value.precondition == "valid-calendar-object-resource"


def test_vtodo_is_refused_as_unsupported_component():
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:t1\r\n"
            "DTSTAMP:20261101T000000Z\r\nSUMMARY:todo\r\nEND:VTODO\r\nEND:VCALENDAR\r\n")
    with pytest.raises(UnsupportedObject) as info:
        event_plan(text, "t.ics")
    assert info.value.construct == "VTODO"
    assert info.value.precondition == "supported-calendar-component"


def test_exdate_and_override_become_cancellation_and_patch():
    text = ics("""DTSTART;TZID=Europe/Berlin:20261124T093000
DTEND;TZID=Europe/Berlin:20261124T100000
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Berlin:20261201T093000
SUMMARY:Weekly""", extra="""BEGIN:VEVENT
UID:u1@example.com
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20261208T093000
DTSTART;TZID=Europe/Berlin:20261208T140000
DTEND;TZID=Europe/Berlin:20261208T143000
SUMMARY:Moved
END:VEVENT
""")
    plan = event_plan(text, "w.ics")
    assert plan.cancelled == ["2026-12-01T08:30:00Z"]
    assert list(plan.overrides) == ["2026-12-08T08:30:00Z"]
    assert plan.overrides["2026-12-08T08:30:00Z"]["subject"] == "Moved"
    assert plan.master["recurrence"]["range"] == {
        "startDate": "2026-11-24", "recurrenceTimeZone": "W. Europe Standard Time",
        "type": "numbered", "numberOfOccurrences": 5}


def test_windows_iana_mapping_and_rule_matching():
    assert iana_from_graph("Pacific Standard Time") == "America/Los_Angeles"
    assert iana_from_graph("tzone://Microsoft/Utc") == "UTC"
    assert iana_from_graph("tzone://Microsoft/Custom") is None
    assert graph_from_iana("Europe/Paris") == "Romance Standard Time"
    assert tzinfo_name(ZoneInfo("Asia/Kolkata")) == "Asia/Kolkata"
    # A zone known only by its rules is matched to an IANA zone with the same offsets,
    # preferring the one its label names.
    assert match_by_rules(ZoneInfo("US/Eastern"), "Eastern Time (New York)") == \
        "America/New_York"
    with pytest.raises(ValueError, match="Makebelieve"):
        match_by_rules(dt.timezone(dt.timedelta(hours=5, minutes=17)), "Makebelieve")


def test_custom_vtimezone_is_matched_by_rules():
    text = ics(f"""DTSTART;TZID={OUTLOOK_TZID}:20260715T093000
DTEND;TZID={OUTLOOK_TZID}:20260715T103000""", tz=OUTLOOK_ZONE)
    plan = event_plan(text, "a.ics")
    assert plan.master["start"] == {"dateTime": "2026-07-15T09:30:00",
                                    "timeZone": "W. Europe Standard Time"}


def test_floating_start_with_zoned_end_is_read_in_the_end_zone():
    """Radicale issue 1847: DTSTART floating, DTEND with TZID (seen from real clients)."""
    plan = event_plan(ics("""DTSTART:20250814T180000
DTEND;TZID=Europe/Brussels:20250814T190000"""), "a.ics", default_zone="UTC")
    assert plan.master["start"]["dateTime"] == "2025-08-14T18:00:00"
    assert plan.master["end"]["dateTime"] == "2025-08-14T19:00:00"
    assert plan.master["start"]["timeZone"] == plan.master["end"]["timeZone"]


def test_override_repeating_the_masters_exdate_is_accepted():
    """ical4j (DAVx5) copies the master's EXDATEs into each override."""
    text = ics("""DTSTART;TZID=Europe/Paris:20240627T193000
DTEND;TZID=Europe/Paris:20240627T203000
RRULE:FREQ=WEEKLY
EXDATE;TZID=Europe/Paris:20240704T193000""", uid="x1", extra="""BEGIN:VEVENT
UID:x1
DTSTAMP:20261101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20241128T193000
DTSTART;TZID=Europe/Paris:20241128T200000
DTEND;TZID=Europe/Paris:20241128T210000
EXDATE;TZID=Europe/Paris:20240704T193000
END:VEVENT
""")
    plan = event_plan(text, "a.ics")
    assert len(plan.cancelled) == 1 and len(plan.overrides) == 1
    with pytest.raises(UnsupportedObject, match="EXDATE in a RECURRENCE-ID override"):
        event_plan(text.replace("EXDATE;TZID=Europe/Paris:20240704T193000\r\nEND:VEVENT\r\n"
                                "END:VCALENDAR", "EXDATE;TZID=Europe/Paris:20240711T193000\r\n"
                                "END:VEVENT\r\nEND:VCALENDAR"), "a.ics")
