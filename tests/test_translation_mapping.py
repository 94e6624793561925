"""The mapping of docs/mapping.md, rule by rule, without I/O: iCalendar -> Graph body, Graph
event -> iCalendar, and what is kept for CalDAV clients or refused."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import icalendar
import pytest

from radicale_graph.translation import (
    UnsupportedObject,
    check_against,
    event_plan,
    extended,
    kept,
    to_resource,
)

from .test_translation import OUTLOOK_TZID, OUTLOOK_ZONE, as_stored, ics

ODD_ZONE = """BEGIN:VTIMEZONE
TZID:Nowhere/Middle
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:-0741
TZOFFSETTO:-0741
END:STANDARD
END:VTIMEZONE
"""
TIMED = "DTSTART:20261124T093000Z\nDTEND:20261124T103000Z\n"


def stored(plan, **graph) -> dict:
    """What Graph returns for a plan's master, with ``graph`` changes made in Outlook."""
    event = as_stored(plan.master)
    event.update(graph)
    return event


def vevent(text: str, index: int = 0):
    return icalendar.Calendar.from_ical(text).walk("VEVENT")[index]


def read_back(text: str, **graph):
    plan = event_plan(text, "a.ics")
    return vevent(to_resource(stored(plan, **graph)).text)


# -- time -----------------------------------------------------------------------------------


def test_floating_time_is_pinned_to_the_default_zone_and_read_back_floating():
    text = ics("DTSTART:20260715T093000\nDTEND:20260715T100000\nSUMMARY:Float")
    plan = event_plan(text, "a.ics", default_zone="Europe/Berlin")
    assert plan.master["start"] == {"dateTime": "2026-07-15T09:30:00",
                                    "timeZone": "W. Europe Standard Time"}
    event = vevent(to_resource(stored(plan)).text)
    assert event.decoded("DTSTART") == dt.datetime(2026, 7, 15, 9, 30)  # floating again


def test_x_wr_timezone_sets_the_zone_of_floating_times():
    text = ics("DTSTART:20260715T093000\nDTEND:20260715T100000").replace(
        "PRODID:-//test//EN", "PRODID:-//test//EN\r\nX-WR-TIMEZONE:America/New_York")
    plan = event_plan(text, "a.ics", default_zone="Europe/Berlin")
    assert plan.master["start"]["timeZone"] == "Eastern Standard Time"


def test_outlook_custom_zone_is_matched_by_rules_and_its_tzid_read_back():
    text = ics(f"DTSTART;TZID={OUTLOOK_TZID}:20260715T093000\n"
               f"DTEND;TZID={OUTLOOK_TZID}:20260715T103000\nRRULE:FREQ=WEEKLY;COUNT=30",
               tz=OUTLOOK_ZONE)
    plan = event_plan(text, "a.ics")
    assert plan.master["start"] == {"dateTime": "2026-07-15T09:30:00",
                                    "timeZone": "W. Europe Standard Time"}
    assert plan.zone == "Europe/Berlin"
    back = icalendar.Calendar.from_ical(to_resource(stored(plan)).text)
    event = back.walk("VEVENT")[0]
    assert str(event["DTSTART"].params["TZID"]).startswith("(UTC+01:00) Amsterdam")
    assert [str(z["TZID"]) for z in back.walk("VTIMEZONE")] == [
        "(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"]
    # across the DST change in October the wall clock stays at 09:30
    assert event.decoded("DTSTART").utcoffset() == dt.timedelta(hours=2)


def test_zone_without_a_windows_twin_single_event_as_utc_series_refused():
    single = ics("DTSTART;TZID=Nowhere/Middle:20230306T134200\n"
                 "DTEND;TZID=Nowhere/Middle:20230306T144200", tz=ODD_ZONE)
    plan = event_plan(single, "a.ics")
    assert plan.master["start"] == {"dateTime": "2023-03-06T21:23:00", "timeZone": "UTC"}
    event = vevent(to_resource(stored(plan)).text)
    assert event["DTSTART"].params["TZID"] == "Nowhere/Middle"
    assert event.decoded("DTSTART").utcoffset() == -dt.timedelta(hours=7, minutes=41)
    series = single.replace("DTEND", "RRULE:FREQ=DAILY;COUNT=3\r\nDTEND")
    with pytest.raises(UnsupportedObject) as info:
        event_plan(series, "a.ics")
    assert info.value.construct == "VTIMEZONE Nowhere/Middle"


def test_all_day_series_and_graph_custom_and_utc_zones():
    plan = event_plan(ics("DTSTART;VALUE=DATE:20261224\nRRULE:FREQ=YEARLY"), "a.ics")
    assert plan.all_day and plan.zone == "UTC"
    assert plan.master["recurrence"]["pattern"] == {
        "interval": 1, "firstDayOfWeek": "monday", "type": "absoluteYearly", "month": 12,
        "dayOfMonth": 24, "index": "first"}
    custom = {"id": "x", "subject": "s", "isAllDay": False,
              "start": {"dateTime": "2026-07-01T07:00:00", "timeZone": "UTC"},
              "end": {"dateTime": "2026-07-01T08:00:00", "timeZone": "UTC"},
              "originalStartTimeZone": "tzone://Microsoft/Custom",
              "recurrence": {"pattern": {"type": "daily", "interval": 1},
                             "range": {"type": "numbered", "numberOfOccurrences": 2,
                                       "startDate": "2026-07-01",
                                       "recurrenceTimeZone": "W. Europe Standard Time"}}}
    event = vevent(to_resource(custom).text)
    assert event.decoded("DTSTART") == dt.datetime(2026, 7, 1, 9, 0,
                                                   tzinfo=ZoneInfo("Europe/Berlin"))
    utc = dict(custom, originalStartTimeZone="tzone://Microsoft/Utc", recurrence=None)
    assert vevent(to_resource(utc).text).decoded("DTSTART").utcoffset() == dt.timedelta(0)


def test_graph_series_starting_off_pattern_is_rendered_from_its_first_occurrence():
    graph = {"id": "x", "subject": "Mondays", "isAllDay": False,
             "start": {"dateTime": "2017-09-05T12:00:00", "timeZone": "Pacific Standard Time"},
             "end": {"dateTime": "2017-09-05T14:00:00", "timeZone": "Pacific Standard Time"},
             "originalStartTimeZone": "Pacific Standard Time",
             "recurrence": {"pattern": {"type": "weekly", "interval": 1,
                                        "daysOfWeek": ["monday"]},
                            "range": {"type": "endDate", "startDate": "2017-09-05",
                                      "endDate": "2017-12-31"}}}
    event = vevent(to_resource(graph).text)
    tz = ZoneInfo("America/Los_Angeles")
    assert event.decoded("DTSTART") == dt.datetime(2017, 9, 11, 12, 0, tzinfo=tz)
    assert event.decoded("DTEND") == dt.datetime(2017, 9, 11, 14, 0, tzinfo=tz)


# -- recurrence -------------------------------------------------------------------------------


@pytest.mark.parametrize("body, construct", [
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO", "DTSTART that is not an "
     "occurrence of its RRULE"),
    ("DTSTART:20260131T093000Z\nRRULE:FREQ=MONTHLY", "RRULE MONTHLY on day 31 (DTSTART)"),
    ("DTSTART:20280229T093000Z\nRRULE:FREQ=YEARLY", "RRULE yearly on 29 February"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=DAILY;UNTIL=20261101T000000Z",
     "RRULE UNTIL before DTSTART"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=MONTHLY;BYDAY=-2TU", "RRULE BYDAY position -2"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=DAILY;BYHOUR=9,10", "RRULE BYHOUR"),
    ("DTSTART:20261124T093000Z\nRRULE:FREQ=DAILY;INTERVAL=2;BYDAY=TU",
     "RRULE FREQ=DAILY with INTERVAL and BYDAY"),
])
def test_rules_that_would_change_meaning_are_refused(body, construct):
    with pytest.raises(UnsupportedObject) as info:
        event_plan(ics(body), "a.ics")
    assert info.value.construct == construct
    assert info.value.precondition == "valid-calendar-object-resource"


def test_outlook_last_day_forms_are_held():
    monthly = event_plan(ics("DTSTART:20260131T093000Z\n"
                             "RRULE:FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1"), "a.ics")
    assert monthly.master["recurrence"]["pattern"]["dayOfMonth"] == 31
    yearly = event_plan(ics("DTSTART:20280229T093000Z\n"
                            "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=28,29;BYSETPOS=-1"), "a.ics")
    assert yearly.master["recurrence"]["pattern"] == {
        "interval": 1, "firstDayOfWeek": "monday", "type": "absoluteYearly", "month": 2,
        "dayOfMonth": 29, "index": "first"}
    last = event_plan(ics("DTSTART:20260131T093000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1"),
                      "a.ics")
    assert last.master["recurrence"]["pattern"]["index"] == "last"


def test_until_becomes_the_inclusive_end_date_exactly_across_dst():
    tz = "DTSTART;TZID=Europe/Berlin:20270301T093000\nRRULE:FREQ=DAILY;UNTIL="
    # 2027-03-30 09:30 in Berlin is 07:30Z (summer time since 28 March)
    at = event_plan(ics(tz + "20270330T073000Z"), "a.ics")
    before = event_plan(ics(tz + "20270330T072959Z"), "a.ics")
    assert at.master["recurrence"]["range"]["endDate"] == "2027-03-30"
    assert before.master["recurrence"]["range"]["endDate"] == "2027-03-29"


def test_wkst_interval_and_count_map_to_graph_fields():
    plan = event_plan(ics("DTSTART:20261124T093000Z\n"
                          "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;WKST=SU;COUNT=8"), "a.ics")
    assert plan.master["recurrence"] == {
        "pattern": {"interval": 2, "firstDayOfWeek": "sunday", "type": "weekly",
                    "daysOfWeek": ["tuesday", "thursday"], "index": "first"},
        "range": {"startDate": "2026-11-24", "recurrenceTimeZone": "UTC", "type": "numbered",
                  "numberOfOccurrences": 8}}


# -- exceptions -----------------------------------------------------------------------------


SERIES = """DTSTART;TZID=Europe/Berlin:20261124T093000
DTEND;TZID=Europe/Berlin:20261124T100000
RRULE:FREQ=WEEKLY;COUNT=5
SUMMARY:Weekly"""


def override(start: str, extra: str = "") -> str:
    return ("BEGIN:VEVENT\nUID:u1@example.com\nDTSTAMP:20261101T000000Z\n"
            "RECURRENCE-ID;TZID=Europe/Berlin:20261208T093000\n"
            f"DTSTART;TZID=Europe/Berlin:{start}\nDTEND;TZID=Europe/Berlin:{start[:9]}235900\n"
            f"SUMMARY:Moved\n{extra}END:VEVENT\n")


def test_override_moved_onto_the_next_occurrences_day_is_refused():
    with pytest.raises(UnsupportedObject) as info:
        event_plan(ics(SERIES, extra=override("20261215T080000")), "a.ics")
    assert "ErrorOccurrenceCrossingBoundary" in info.value.reason


def test_override_of_a_non_occurrence_is_refused():
    text = ics(SERIES, extra=override("20261208T110000").replace("20261208T093000",
                                                                 "20261209T093000"))
    with pytest.raises(UnsupportedObject) as info:
        event_plan(text, "a.ics")
    assert "not an occurrence" in info.value.construct


def test_exdate_that_names_no_occurrence_is_only_kept_as_text():
    text = ics(SERIES + "\nEXDATE;TZID=Europe/Berlin:20261202T093000,20261201T093000")
    plan = event_plan(text, "a.ics")
    assert plan.cancelled == ["2026-12-01T08:30:00Z"]
    graph = stored(plan, cancelledOccurrences=["OID.AAMk-1.2026-12-01"])
    event = vevent(to_resource(graph).text)
    assert event["EXDATE"].to_ical() == b"20261202T093000,20261201T093000"


def test_override_only_resource_plans_its_overrides_without_a_master():
    text = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + override(
        "20261208T140000", "ORGANIZER:mailto:alice@contoso.com\nATTENDEE;PARTSTAT=ACCEPTED:"
        "mailto:bob@contoso.com\n").replace("\n", "\r\n") + "END:VCALENDAR\r\n")
    plan = event_plan(text, "invite.ics", owner="bob@contoso.com")
    assert plan.master is None and plan.is_series
    assert list(plan.overrides) == ["2026-12-08T08:30:00Z"]
    body = plan.overrides["2026-12-08T08:30:00Z"]
    assert body["subject"] == "Moved" and body["attendees"] == []
    assert body["singleValueExtendedProperties"][0]["value"] == "u1@example.com"
    assert plan.owner_partstat == "ACCEPTED"
    with pytest.raises(UnsupportedObject, match="without its series"):
        check_against(plan, None)


# -- people ---------------------------------------------------------------------------------

MEETING = """DTSTART:20261124T093000Z
DTEND:20261124T103000Z
ORGANIZER;CN=Alice:mailto:alice@contoso.com
ATTENDEE;CN=Bob;PARTSTAT=TENTATIVE;RSVP=TRUE:mailto:bob@contoso.com
ATTENDEE;CN=Eve;ROLE=OPT-PARTICIPANT;RSVP=TRUE:mailto:eve@example.com"""


def test_owners_own_partstat_is_separated_from_the_attendees():
    plan = event_plan(ics(MEETING), "a.ics", owner="Bob@contoso.com")
    assert plan.owner_partstat == "TENTATIVE"
    assert [a["emailAddress"]["address"] for a in plan.master["attendees"]] == [
        "eve@example.com"]
    assert plan.master["responseRequested"] is True
    with pytest.raises(UnsupportedObject) as info:
        check_against(plan, None)  # a meeting organized by Alice cannot be created by Bob
    assert info.value.construct == "ORGANIZER alice@contoso.com"
    existing = {"organizer": {"emailAddress": {"address": "alice@contoso.com"}}}
    check_against(plan, existing)


@pytest.mark.parametrize("listed", [True, False])
def test_owners_partstat_is_read_from_response_status(listed):
    graph = {"id": "x", "subject": "Review", "isOrganizer": False,
             "start": {"dateTime": "2026-11-24T09:30:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-11-24T10:30:00", "timeZone": "UTC"},
             "organizer": {"emailAddress": {"address": "alice@contoso.com"}},
             "responseStatus": {"response": "declined"},
             "attendees": [{"emailAddress": {"address": "eve@example.com"},
                            "type": "optional", "status": {"response": "accepted"}}]}
    if listed:
        graph["attendees"].append({"emailAddress": {"address": "bob@contoso.com"},
                                   "type": "required", "status": {"response": "none"}})
    event = vevent(to_resource(graph, owner="bob@contoso.com").text)
    partstats = {str(a): a.params["PARTSTAT"] for a in event["ATTENDEE"]}
    assert partstats == {"mailto:eve@example.com": "ACCEPTED",
                         "mailto:bob@contoso.com": "DECLINED"}
    assert str(event["ORGANIZER"]) == "mailto:alice@contoso.com"


def test_copy_of_a_meeting_the_owner_neither_organizes_nor_attends():
    """Stored as Carol's appointment without attendees (Graph would invite them otherwise);
    the ORGANIZER and ATTENDEE lines come back as the client wrote them."""
    text = ics(MEETING)
    plan = event_plan(text, "a.ics", owner="carol@contoso.com")
    assert plan.master["attendees"] == []
    assert "organizer" not in plan.master and "responseRequested" not in plan.master
    back = vevent(to_resource(stored(plan), owner="carol@contoso.com").text)
    sent = vevent(text)
    assert back["ORGANIZER"].to_ical() == sent["ORGANIZER"].to_ical()
    assert sorted(a.to_ical() for a in back["ATTENDEE"]) == \
        sorted(a.to_ical() for a in sent["ATTENDEE"])
    assert [dict(a.params) for a in back["ATTENDEE"]] == [dict(a.params)
                                                          for a in sent["ATTENDEE"]]


def test_roles_cutypes_and_rsvp():
    plan = event_plan(ics(TIMED + """ORGANIZER:mailto:alice@contoso.com
ATTENDEE;ROLE=CHAIR:mailto:c@example.com
ATTENDEE;ROLE=NON-PARTICIPANT:mailto:n@example.com
ATTENDEE;CUTYPE=RESOURCE:mailto:projector@contoso.com
ATTENDEE;PARTSTAT=DECLINED:mailto:d@example.com"""), "a.ics", owner="alice@contoso.com")
    kinds = [(a["emailAddress"]["address"], a["type"], a["status"]["response"])
             for a in plan.master["attendees"]]
    assert kinds == [("c@example.com", "required", "none"),
                     ("n@example.com", "optional", "none"),
                     ("projector@contoso.com", "resource", "none"),
                     ("d@example.com", "required", "declined")]
    assert plan.master["responseRequested"] is False  # no RSVP=TRUE (RFC 5545 default FALSE)


# -- the rest -------------------------------------------------------------------------------


@pytest.mark.parametrize("show_as, transp, busystatus", [
    ("free", "TRANSPARENT", None), ("tentative", "OPAQUE", "TENTATIVE"),
    ("busy", "OPAQUE", None), ("oof", "OPAQUE", "OOF"),
    ("workingElsewhere", "TRANSPARENT", "WORKINGELSEWHERE"),
    ("unknown", "TRANSPARENT", "UNKNOWN"),
])
def test_show_as_all_six_values_both_ways(show_as, transp, busystatus):
    graph = {"id": "x", "subject": "s", "showAs": show_as,
             "start": {"dateTime": "2026-11-24T09:30:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-11-24T10:30:00", "timeZone": "UTC"}}
    text = to_resource(graph).text
    event = vevent(text)
    assert str(event["TRANSP"]) == transp
    assert (str(event["X-MICROSOFT-CDO-BUSYSTATUS"]) if busystatus else None) == busystatus \
        or "X-MICROSOFT-CDO-BUSYSTATUS" not in event
    assert event_plan(text, "a.ics").master["showAs"] == show_as


@pytest.mark.parametrize("line, field, value", [
    ("CLASS:PRIVATE", "sensitivity", "private"),
    ("CLASS:CONFIDENTIAL", "sensitivity", "confidential"),
    ("CLASS:X-PERSONAL", "sensitivity", "personal"),
    ("CLASS:X-SECRET", "sensitivity", "private"),  # RFC 5545: unknown = PRIVATE
    ("PRIORITY:1", "importance", "high"), ("PRIORITY:4", "importance", "high"),
    ("PRIORITY:5", "importance", "normal"), ("PRIORITY:9", "importance", "low"),
    ("PRIORITY:0", "importance", "normal"),
    ("CATEGORIES:Work,Travel\nCATEGORIES:Red", "categories", ["Work", "Travel", "Red"]),
    ("TRANSP:TRANSPARENT", "showAs", "free"),
    ("X-MICROSOFT-CDO-BUSYSTATUS:OOF\nTRANSP:OPAQUE", "showAs", "oof"),
    ("X-RADICALE-GRAPH-ONLINE-MEETING:teamsForBusiness", "onlineMeetingProvider",
     "teamsForBusiness"),
    ("X-MICROSOFT-DISALLOW-COUNTER:TRUE", "allowNewTimeProposals", False),
])
def test_simple_properties_map_to_graph_fields(line, field, value):
    plan = event_plan(ics(TIMED + line), "a.ics")
    assert plan.master[field] == value
    back = vevent(to_resource(stored(plan)).text)
    original = vevent(ics(TIMED + line))
    for name in {row.split(":")[0] for row in line.split("\n")}:
        assert back[name] == original[name]  # the client's own spelling comes back


def test_no_teams_meeting_unless_asked():
    plan = event_plan(ics(TIMED + "CONFERENCE;VALUE=URI:https://meet.example.com/x"), "a.ics")
    assert "isOnlineMeeting" not in plan.master
    graph = stored(plan, isOnlineMeeting=True, onlineMeetingProvider="teamsForBusiness",
                   onlineMeeting={"joinUrl": "https://teams.microsoft.com/l/meetup-join/1"})
    conferences = sorted(str(c) for c in vevent(to_resource(graph).text)["CONFERENCE"])
    assert conferences == ["https://meet.example.com/x",
                           "https://teams.microsoft.com/l/meetup-join/1"]


def test_reminder_is_the_first_alarm_before_start_others_are_kept():
    alarms = ("BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;RELATED=END:PT0S\nDESCRIPTION:e\n"
              "END:VALARM\nBEGIN:VALARM\nACTION:AUDIO\nTRIGGER:-PT10M\nEND:VALARM\n"
              "BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-P1D\nDESCRIPTION:d\nEND:VALARM")
    text = ics(TIMED + alarms)
    plan = event_plan(text, "a.ics")
    assert plan.master["isReminderOn"] is True
    assert plan.master["reminderMinutesBeforeStart"] == 10
    assert len(vevent(to_resource(stored(plan)).text).walk("VALARM")) == 3
    changed = vevent(to_resource(stored(plan, reminderMinutesBeforeStart=30)).text)
    triggers = sorted(str(a.decoded("TRIGGER")) for a in changed.walk("VALARM"))
    assert triggers == ["-1 day, 0:00:00", "-1 day, 23:30:00", "0:00:00"]


def test_html_description_and_its_text_reading():
    text = ics(TIMED + "DESCRIPTION:Hello world\nX-ALT-DESC;FMTTYPE=text/html:<p>Hello "
               "<b>world</b></p>")
    plan = event_plan(text, "a.ics")
    assert plan.master["body"] == {"contentType": "html",
                                   "content": "<p>Hello <b>world</b></p>"}
    as_text = {"contentType": "text", "content": "Hello world\r\n"}
    event = vevent(to_resource(stored(plan, body=as_text)).text)
    assert str(event["X-ALT-DESC"]) == "<p>Hello <b>world</b></p>"
    edited = vevent(to_resource(stored(plan, body={"contentType": "text",
                                                   "content": "Bye"})).text)
    assert str(edited["DESCRIPTION"]) == "Bye" and "X-ALT-DESC" not in edited


def test_outlook_edits_win_and_kept_lines_stay():
    text = ics(TIMED + "SUMMARY:Old\nCLASS:PUBLIC\nX-FOO;X-P=1:bar\nCOLOR:red")
    event = read_back(text, subject="New", sensitivity="private")
    assert str(event["SUMMARY"]) == "New"
    assert str(event["CLASS"]) == "PRIVATE"
    assert event["X-FOO"].to_ical() == b"bar" and str(event["COLOR"]) == "red"


def test_locations_structured_and_several():
    graph = {"id": "x", "subject": "s",
             "start": {"dateTime": "2026-11-24T09:30:00", "timeZone": "UTC"},
             "end": {"dateTime": "2026-11-24T10:30:00", "timeZone": "UTC"},
             "location": {"displayName": "Conf Room 3; Fourth Coffee"},
             "locations": [{"displayName": "Conf Room 3"},
                           {"displayName": "Fourth Coffee", "address": {"city": "Redmond"},
                            "coordinates": {"latitude": 47.672, "longitude": -102.103}}]}
    text = to_resource(graph).text
    assert text.count("BEGIN:VLOCATION") == 2
    plan = event_plan(text, "a.ics")
    assert plan.master["locations"] == graph["locations"]
    geo = event_plan(ics(TIMED + "LOCATION:Home\nGEO:47.5;-122.25"), "a.ics")
    assert geo.master["location"] == {"displayName": "Home", "coordinates": {
        "latitude": 47.5, "longitude": -122.25}}
    apple = event_plan(ics(TIMED + "LOCATION:Office\nX-APPLE-STRUCTURED-LOCATION;VALUE=URI;"
                           "X-TITLE=Office:geo:37.33,-122.03"), "a.ics")
    assert apple.master["location"]["coordinates"] == {"latitude": 37.33,
                                                       "longitude": -122.03}


def test_status_cancelled():
    plan = event_plan(ics(TIMED + "STATUS:CANCELLED"), "a.ics")
    assert plan.status_cancelled and "isCancelled" not in plan.master
    with pytest.raises(UnsupportedObject, match="STATUS:CANCELLED"):
        check_against(plan, None)
    check_against(plan, {"isCancelled": True})
    with pytest.raises(UnsupportedObject):
        check_against(event_plan(ics(TIMED), "a.ics"), {"isCancelled": True})
    assert str(read_back(ics(TIMED), isCancelled=True)["STATUS"]) == "CANCELLED"


def test_created_sequence_and_stamps():
    text = ics(TIMED + "CREATED:20200101T000000Z\nSEQUENCE:4\nLAST-MODIFIED:20200102T000000Z")
    event = read_back(text)
    assert event.decoded("CREATED") == dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert int(event["SEQUENCE"]) == 4
    # the store's own revision time (Graph's lastModifiedDateTime)
    assert event.decoded("LAST-MODIFIED") == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    assert event.decoded("DTSTAMP") == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)


# -- kept data ------------------------------------------------------------------------------


def test_kept_data_is_one_bounded_extended_property():
    plan = event_plan(ics(TIMED + "X-SMALL:1\nATTACH:https://example.com/a.pdf"), "a.ics")
    found = extended.read(plan.master)
    data = json.loads(found[extended.KEPT_PROPERTY])
    assert sorted(data["m"]["x"]) == ["ATTACH:https://example.com/a.pdf", "X-SMALL:1"]
    assert extended.KEPT_PROPERTY in extended.expand_filter()
    with pytest.raises(UnsupportedObject) as info:
        event_plan(ics(TIMED + "X-HUGE:" + "x" * kept.MAX_CHARS), "a.ics")
    assert info.value.construct == "X-HUGE"
    assert str(kept.MAX_CHARS) in info.value.reason


def test_unknown_components_and_parameters_are_kept():
    text = ics(TIMED + "SUMMARY;LANGUAGE=de;X-P=2:Hallo\nBEGIN:PARTICIPANT\nUID:p1\n"
               "PARTICIPANT-TYPE:SPEAKER\nEND:PARTICIPANT")
    event = read_back(text)
    assert event["SUMMARY"].params["LANGUAGE"] == "de"
    assert [c.name for c in event.subcomponents] == ["PARTICIPANT"]


@pytest.mark.parametrize("name, windows", [
    ("America/Los_Angeles", "Pacific Standard Time"),
    ("America/New_York", "Eastern Standard Time"),
    ("America/Denver", "Mountain Standard Time"),
    ("America/Atikokan", "SA Pacific Standard Time"),
])
def test_fixture_vtimezones_under_custom_names_are_matched_by_rules(shared, name, windows):
    """ical.js's VTIMEZONEs (../shared/fixtures/ics/ical.js/timezones) renamed so that only
    their rules can identify them, as Outlook's and Apple's custom TZIDs must be."""
    source = (shared / "fixtures/ics/ical.js/timezones" / f"{name}.ics").read_text()
    zone = icalendar.Calendar.from_ical(source).walk("VTIMEZONE")[0]
    custom = f"Custom {name.split('/')[1]}"
    tz_text = zone.to_ical().decode().replace(f"TZID:{name}", f"TZID:{custom}")
    text = ics(f'DTSTART;TZID="{custom}":20260115T093000\nDTEND;TZID="{custom}":20260115T1000'
               "00\nRRULE:FREQ=WEEKLY;COUNT=40", tz=tz_text.replace("\r\n", "\n"))
    plan = event_plan(text, "a.ics")
    assert plan.master["start"]["timeZone"] == windows
    back = icalendar.Calendar.from_ical(to_resource(stored(plan)).text)
    assert str(back.walk("VEVENT")[0]["DTSTART"].params["TZID"]) == custom
    assert custom in [str(z["TZID"]) for z in back.walk("VTIMEZONE")]


def test_makebelieve_zone_single_event_is_exact_in_utc(shared):
    source = (shared / "fixtures/ics/ical.js/timezones/Makebelieve/RRULE_UNTIL_test.ics")
    zone = icalendar.Calendar.from_ical(source.read_text()).walk("VTIMEZONE")[0]
    tzid = "Makebelieve/RRULE_UNTIL"
    text = ics(f"DTSTART;TZID={tzid}:19770601T120000\nDTEND;TZID={tzid}:19770601T130000",
               tz=zone.to_ical().decode().replace("\r\n", "\n"))
    original = vevent(text).decoded("DTSTART")
    plan = event_plan(text, "a.ics")
    instant = dt.datetime.fromisoformat(plan.master["start"]["dateTime"] + "+00:00") \
        if plan.master["start"]["timeZone"] == "UTC" else None
    assert instant is None or instant == original.astimezone(dt.UTC)
    back = vevent(to_resource(stored(plan)).text)
    assert back.decoded("DTSTART") == original


def test_field_table_covers_every_group_and_the_old_select():
    """The mapping table (translation/fields) owns every mapped group of lines.GROUPS, and
    its Graph names are the $select the storage has always used."""
    from radicale_graph.translation import fields, lines

    owned = {g for row in fields.FIELDS for g in row.groups}
    mapped = set(lines.GROUPS.values()) | set(lines.COMPONENT_GROUPS.values())
    assert mapped - owned <= lines.SERVER_GROUPS
    assert set(fields.GRAPH_FIELDS) == {
        "id", "subject", "body", "start", "end", "isAllDay", "location", "locations",
        "organizer", "attendees", "recurrence", "type", "seriesMasterId",
        "originalStartTimeZone", "originalEndTimeZone", "originalStart", "iCalUId",
        "changeKey", "createdDateTime", "lastModifiedDateTime", "sensitivity", "showAs",
        "importance", "categories", "isReminderOn", "reminderMinutesBeforeStart",
        "isCancelled", "isOrganizer", "responseRequested", "responseStatus",
        "cancelledOccurrences", "isOnlineMeeting", "onlineMeetingProvider", "onlineMeeting",
        "onlineMeetingUrl", "allowNewTimeProposals"}
    assert len(fields.GRAPH_FIELDS) == len(set(fields.GRAPH_FIELDS))


def test_revert_body_carries_every_occurrence_field():
    """The body that reverts an exception holds every occurrence field the master has
    (importance, locations and isAllDay included) and the occurrence's own times."""
    from radicale_graph.translation import fields

    plan = event_plan(ics("DTSTART;TZID=Europe/Berlin:20270301T090000\n"
                          "DTEND;TZID=Europe/Berlin:20270301T100000\n"
                          "RRULE:FREQ=WEEKLY;COUNT=4\nPRIORITY:1\nSUMMARY:S\n"), "a.ics")
    body = fields.revert_body(plan.master, "2027-03-08T08:00:00Z", plan.zone, plan.all_day)
    assert body["importance"] == "high" and body["isAllDay"] is False
    assert {k for k in fields.OCCURRENCE_FIELDS if k in plan.master} <= set(body)
    assert body["start"]["dateTime"] == "2027-03-08T09:00:00"
    assert fields.holds(dict(body), body)
    assert not fields.holds(dict(body, importance="normal"), body)
