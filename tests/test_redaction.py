"""radicale_graph.storage.redaction: what a sharee of an Exchange calendar may see of an object.

Views per resources/calendarpermission.md (Microsoft Graph) and RFC 5545 3.8.1.3 (CLASS).
"""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
import recurring_ical_events

from radicale_graph.storage import redaction
from radicale_graph.storage.redaction import (
    FREE_BUSY,
    FULL,
    LIMITED,
    PRIVATE_HIDDEN,
    VIEWS,
    is_private,
    redact,
    view_for_role,
)

VTIMEZONE = [
    "BEGIN:VTIMEZONE", "TZID:Europe/Berlin",
    "BEGIN:STANDARD", "DTSTART:19701025T030000", "TZOFFSETFROM:+0200", "TZOFFSETTO:+0100",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU", "END:STANDARD",
    "BEGIN:DAYLIGHT", "DTSTART:19700329T020000", "TZOFFSETFROM:+0100", "TZOFFSETTO:+0200",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", "END:DAYLIGHT",
    "END:VTIMEZONE",
]

BUSY_PROPS = {"UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "STATUS", "TRANSP", "CLASS",
              "X-MICROSOFT-CDO-BUSYSTATUS", "SUMMARY"}
SECRETS = ("Dermatologist", "Clinic Street 5", "biopsy results", "bob@contoso.com",
           "carol@contoso.com", "Health", "https://clinic.example", "X-SECRET-NOTE",
           "Be there early", "teams.example")


def calendar(*components: list[str], head: tuple[str, ...] = ()) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//redaction//EN", *head]
    for component in components:
        lines += component
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def event(klass: str | None = "PRIVATE", *, uid: str = "uid-1", extra: tuple[str, ...] = (),
          recurrence_id: str | None = None, rrule: bool = False,
          summary: str | None = "Dermatologist") -> list[str]:
    """A VEVENT full of details: attendees, organizer, description, location, an alarm."""
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20240101T080000Z",
             "DTSTART;TZID=Europe/Berlin:20240105T100000",
             "DTEND;TZID=Europe/Berlin:20240105T110000"]
    if recurrence_id:
        lines.append(f"RECURRENCE-ID;TZID=Europe/Berlin:{recurrence_id}")
    if rrule:
        lines += ["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=Europe/Berlin:20240107T100000"]
    if summary is not None:
        lines.append(f"SUMMARY:{summary}")
    if klass is not None:
        lines.append(f"CLASS:{klass}")
    lines += [
        "SEQUENCE:2", "STATUS:CONFIRMED", "TRANSP:OPAQUE", "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
        "LOCATION:Clinic Street 5", "DESCRIPTION:biopsy results",
        "ORGANIZER;CN=Bob:mailto:bob@contoso.com",
        "ATTENDEE;CN=Carol;PARTSTAT=ACCEPTED:mailto:carol@contoso.com",
        "CATEGORIES:Health", "URL:https://clinic.example", "GEO:52.5;13.4",
        "CONFERENCE;VALUE=URI:https://teams.example/meet",
        "X-SECRET-NOTE:whatever", *extra,
        "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "DESCRIPTION:Be there early",
        "END:VALARM",
        "END:VEVENT",
    ]
    return lines


def vevents(text: str) -> list[icalendar.Component]:
    return [c for c in icalendar.Calendar.from_ical(text).subcomponents if c.name == "VEVENT"]


def names(component: icalendar.Component) -> set[str]:
    return set(component.keys())


def assert_busy_block(vevent: icalendar.Component) -> None:
    assert str(vevent["SUMMARY"]) == "Busy"
    assert names(vevent) <= redaction.BUSY_KEEP | {"SUMMARY"}
    assert vevent.subcomponents == []


# A private event with every kind of detail, under each view


@pytest.mark.parametrize("view", [PRIVATE_HIDDEN, LIMITED, FREE_BUSY])
def test_private_event_becomes_busy_block(view):
    text = calendar(VTIMEZONE, event("PRIVATE"))
    out = redact(text, view)
    (vevent,) = vevents(out)
    assert_busy_block(vevent)
    assert names(vevent) == BUSY_PROPS
    assert str(vevent["UID"]) == "uid-1"
    assert str(vevent["CLASS"]) == "PRIVATE"
    assert str(vevent["X-MICROSOFT-CDO-BUSYSTATUS"]) == "BUSY"
    assert str(vevent["TRANSP"]) == "OPAQUE"
    assert vevent["SEQUENCE"] == 2
    assert vevent.decoded("DTSTART").replace(tzinfo=None) == dt.datetime(2024, 1, 5, 10)
    assert vevent.decoded("DTEND") - vevent.decoded("DTSTART") == dt.timedelta(hours=1)
    for secret in SECRETS:
        assert secret not in out
    assert "VALARM" not in out


def test_private_event_full_view_is_unchanged():
    text = calendar(VTIMEZONE, event("PRIVATE"))
    assert redact(text, FULL) is text


def test_private_event_without_summary_gets_busy():
    out = redact(calendar(event("PRIVATE", summary=None)), PRIVATE_HIDDEN)
    (vevent,) = vevents(out)
    assert str(vevent["SUMMARY"]) == "Busy"


def test_busy_block_keeps_recurrence():
    text = calendar(VTIMEZONE, event("PRIVATE", rrule=True,
                                     extra=("RDATE;TZID=Europe/Berlin:20240201T100000",)))
    (vevent,) = vevents(redact(text, PRIVATE_HIDDEN))
    assert_busy_block(vevent)
    assert vevent["RRULE"]["COUNT"] == [5]
    assert vevent["EXDATE"].to_ical() == b"20240107T100000"
    assert vevent["EXDATE"].params["TZID"] == "Europe/Berlin"
    assert vevent["RDATE"].to_ical() == b"20240201T100000"


def test_busy_block_keeps_duration_instead_of_dtend():
    lines = [line for line in event("PRIVATE") if not line.startswith("DTEND")]
    lines.insert(4, "DURATION:PT45M")
    (vevent,) = vevents(redact(calendar(VTIMEZONE, lines), PRIVATE_HIDDEN))
    assert vevent.decoded("DURATION") == dt.timedelta(minutes=45)
    assert "DTEND" not in vevent


# Recurring master with a private override


def recurring(master_class: str | None, override_class: str | None) -> str:
    master = event(master_class, rrule=True, summary="Standup")
    override = event(override_class, recurrence_id="20240108T100000", summary="Dermatologist")
    override = [line.replace("DTSTART;TZID=Europe/Berlin:20240105T100000",
                             "DTSTART;TZID=Europe/Berlin:20240108T140000")
                    .replace("DTEND;TZID=Europe/Berlin:20240105T110000",
                             "DTEND;TZID=Europe/Berlin:20240108T150000")
                for line in override]
    return calendar(VTIMEZONE, master, override)


def test_only_private_override_is_hidden():
    text = recurring(None, "PRIVATE")
    assert is_private(text)
    out = redact(text, PRIVATE_HIDDEN)
    master, override = vevents(out)
    assert "RECURRENCE-ID" not in master
    assert str(master["SUMMARY"]) == "Standup"
    assert str(master["DESCRIPTION"]) == "biopsy results"
    assert "ATTENDEE" in master and "X-SECRET-NOTE" in master
    assert [c.name for c in master.subcomponents] == ["VALARM"]
    assert_busy_block(override)
    assert override.decoded("RECURRENCE-ID").replace(tzinfo=None) == dt.datetime(2024, 1, 8, 10)
    assert override.decoded("DTSTART").replace(tzinfo=None) == dt.datetime(2024, 1, 8, 14)
    assert "Dermatologist" not in out


def test_limited_view_of_recurring_object_with_private_override():
    out = redact(recurring("PUBLIC", "PRIVATE"), LIMITED)
    master, override = vevents(out)
    assert names(master) == (BUSY_PROPS | {"RRULE", "EXDATE", "LOCATION"})
    assert str(master["SUMMARY"]) == "Standup"
    assert str(master["LOCATION"]) == "Clinic Street 5"
    assert_busy_block(override)
    assert "Dermatologist" not in out


@pytest.mark.parametrize("view", [PRIVATE_HIDDEN, LIMITED, FREE_BUSY])
def test_redaction_keeps_occurrence_times(view):
    """The busy time a sharee sees is the owner's: same occurrences, same starts and ends."""
    text = recurring(None, "PRIVATE")

    def spans(ics):
        cal = icalendar.Calendar.from_ical(ics)
        occurrences = recurring_ical_events.of(cal).between(dt.date(2024, 1, 1),
                                                             dt.date(2024, 2, 1))
        return sorted((o.decoded("DTSTART"), o.decoded("DTEND")) for o in occurrences)

    expected = spans(text)
    assert len(expected) == 4  # 5 daily, one EXDATE, one moved by the override
    assert spans(redact(text, view)) == expected


# CONFIDENTIAL and other CLASS values (RFC 5545 3.8.1.3)


@pytest.mark.parametrize("klass", ["CONFIDENTIAL", "confidential", "PRIVATE", "X-UNKNOWN"])
def test_private_classes(klass):
    text = calendar(event(klass))
    assert is_private(text)
    (vevent,) = vevents(redact(text, PRIVATE_HIDDEN))
    assert_busy_block(vevent)
    assert str(vevent["CLASS"]) == klass


@pytest.mark.parametrize("klass", [None, "PUBLIC", "public", "X-PERSONAL"])
def test_not_private_classes(klass):
    text = calendar(VTIMEZONE, event(klass))
    assert not is_private(text)
    assert redact(text, PRIVATE_HIDDEN) is text


# LIMITED on a normal event


def test_limited_keeps_summary_and_location_only():
    text = calendar(VTIMEZONE, event(None))
    out = redact(text, LIMITED)
    (vevent,) = vevents(out)
    assert names(vevent) == BUSY_PROPS - {"CLASS"} | {"LOCATION"}
    assert str(vevent["SUMMARY"]) == "Dermatologist"
    assert str(vevent["LOCATION"]) == "Clinic Street 5"
    assert vevent.subcomponents == []
    for gone in ("DESCRIPTION", "ATTENDEE", "ORGANIZER", "CATEGORIES", "URL", "GEO",
                 "CONFERENCE", "X-SECRET-NOTE", "VALARM", "biopsy results"):
        assert gone not in out


def test_limited_of_already_limited_event_is_unchanged():
    lines = ["BEGIN:VEVENT", "UID:u", "DTSTAMP:20240101T080000Z",
             "DTSTART:20240105T100000Z", "DTEND:20240105T110000Z", "SUMMARY:Lunch",
             "LOCATION:Canteen", "END:VEVENT"]
    text = calendar(lines)
    assert redact(text, LIMITED) is text
    assert redact(text, PRIVATE_HIDDEN) is text
    assert redact(text, FREE_BUSY) is not text


def test_limited_drops_alarm_of_otherwise_limited_event():
    lines = ["BEGIN:VEVENT", "UID:u", "DTSTART:20240105T100000Z", "SUMMARY:Lunch",
             "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT5M", "DESCRIPTION:Lunch",
             "END:VALARM", "END:VEVENT"]
    text = calendar(lines)
    out = redact(text, LIMITED)
    assert out is not text
    (vevent,) = vevents(out)
    assert vevent.subcomponents == []
    assert str(vevent["SUMMARY"]) == "Lunch"
    assert redact(text, PRIVATE_HIDDEN) is text


def test_private_event_that_is_already_a_busy_block_is_unchanged():
    lines = ["BEGIN:VEVENT", "UID:u", "DTSTART:20240105T100000Z", "DTEND:20240105T110000Z",
             "SUMMARY:Busy", "CLASS:PRIVATE", "END:VEVENT"]
    text = calendar(lines)
    assert redact(text, PRIVATE_HIDDEN) is text
    assert redact(text, LIMITED) is text
    renamed = text.replace("SUMMARY:Busy", "SUMMARY:Therapy")
    assert "Therapy" not in redact(renamed, PRIVATE_HIDDEN)


def test_free_busy_hides_normal_event():
    text = calendar(event(None, extra=("TRANSP:TRANSPARENT",)))
    (vevent,) = vevents(redact(text, FREE_BUSY))
    assert_busy_block(vevent)
    assert "Dermatologist" not in redact(text, FREE_BUSY)


# Output shape: reparses, deterministic, identity, VTIMEZONE, calendar level


@pytest.mark.parametrize("view", [PRIVATE_HIDDEN, LIMITED, FREE_BUSY])
def test_output_reparses_and_is_deterministic(view):
    text = recurring("CONFIDENTIAL", "PRIVATE")
    out = redact(text, view)
    assert isinstance(out, str)
    assert out.endswith("\r\n")
    again = icalendar.Calendar.from_ical(out)
    assert again.name == "VCALENDAR"
    assert [c.name for c in again.subcomponents] == ["VTIMEZONE", "VEVENT", "VEVENT"]
    copy = "".join(list(text))  # an equal text that is another object
    assert copy is not text
    assert redact(copy, view) == out
    assert redact(out, view) == out  # redacting a redacted object changes nothing more


def test_non_private_object_is_returned_as_is_under_private_hidden():
    text = recurring(None, "PUBLIC")
    assert not is_private(text)
    assert redact(text, PRIVATE_HIDDEN) is text
    assert redact(text, LIMITED) is not text


def test_tzid_dtstart_keeps_its_vtimezone():
    out = redact(calendar(VTIMEZONE, event("PRIVATE")), PRIVATE_HIDDEN)
    cal = icalendar.Calendar.from_ical(out)
    (tz,) = [c for c in cal.subcomponents if c.name == "VTIMEZONE"]
    (vevent,) = [c for c in cal.subcomponents if c.name == "VEVENT"]
    assert str(tz["TZID"]) == "Europe/Berlin"
    assert vevent["DTSTART"].params["TZID"] == "Europe/Berlin"
    assert [c.name for c in tz.subcomponents] == ["STANDARD", "DAYLIGHT"]
    start = vevent.decoded("DTSTART")
    assert start.utcoffset() == dt.timedelta(hours=1)


def test_calendar_level_and_other_components_when_rewritten():
    todo = ["BEGIN:VTODO", "UID:todo-1", "SUMMARY:Buy ointment", "END:VTODO"]
    text = calendar(VTIMEZONE, event("PRIVATE"), todo,
                    head=("CALSCALE:GREGORIAN", "METHOD:PUBLISH", "X-WR-CALNAME:Alice private"))
    cal = icalendar.Calendar.from_ical(redact(text, PRIVATE_HIDDEN))
    assert names(cal) == {"VERSION", "PRODID", "CALSCALE", "METHOD"}
    assert str(cal["PRODID"]) == "-//test//redaction//EN"
    assert str(cal["METHOD"]) == "PUBLISH"
    assert [c.name for c in cal.subcomponents] == ["VTIMEZONE", "VEVENT"]


def test_other_components_are_dropped_even_without_private_event():
    todo = ["BEGIN:VTODO", "UID:todo-1", "SUMMARY:Buy ointment", "END:VTODO"]
    text = calendar(event(None), todo)
    out = redact(text, PRIVATE_HIDDEN)
    assert out is not text
    assert "Buy ointment" not in out
    (vevent,) = vevents(out)
    assert str(vevent["DESCRIPTION"]) == "biopsy results"  # the public event is whole


# Errors


@pytest.mark.parametrize("view", ["", "FULL", "freeBusyRead", "busy", None])
def test_unknown_view(view):
    with pytest.raises(ValueError, match="unknown redaction view"):
        redact(calendar(event(None)), view)


@pytest.mark.parametrize("view", [*VIEWS, FREE_BUSY])
@pytest.mark.parametrize("text", [
    "",
    "not iCalendar at all",
    "BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240101T100000Z\r\nEND:VEVENT\r\n",
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
])
def test_not_a_vcalendar(text, view):
    with pytest.raises(ValueError, match="not an iCalendar VCALENDAR"):
        redact(text, view)
    with pytest.raises(ValueError, match="not an iCalendar VCALENDAR"):
        is_private(text)


def test_bytes_are_refused():
    with pytest.raises(TypeError):
        redact(calendar(event(None)).encode(), PRIVATE_HIDDEN)


# view_for_role


@pytest.mark.parametrize(("role", "owner", "view"), [
    ("none", True, FULL),
    ("freeBusyRead", True, FULL),
    ("read", True, FULL),
    ("delegateWithPrivateEventAccess", False, FULL),
    ("read", False, PRIVATE_HIDDEN),
    ("write", False, PRIVATE_HIDDEN),
    ("delegateWithoutPrivateEventAccess", False, PRIVATE_HIDDEN),
    ("custom", False, PRIVATE_HIDDEN),
    ("limitedRead", False, LIMITED),
    ("freeBusyRead", False, FREE_BUSY),
    ("FreeBusyRead", False, FREE_BUSY),
    ("none", False, None),
    ("", False, None),
    ("owner", False, None),
    ("readWrite", False, None),
])
def test_view_for_role(role, owner, view):
    assert view_for_role(role, owner) == view


def test_constants():
    assert VIEWS == ("full", "private-hidden", "limited")
    assert FREE_BUSY == "free-busy"
    assert FREE_BUSY not in VIEWS
    for view in {view_for_role(r, False) for r in redaction._ROLE_VIEWS} - {None}:
        redact(calendar(event(None)), view)  # every view a role maps to is accepted
