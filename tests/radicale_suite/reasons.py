"""Why tests of Radicale's ``TestBaseRequests`` do not pass, one reason per test.

:data:`REASONS` explains each reason in one sentence (docs/radicale-tests.md has the same
table). :data:`GRAPH` names the reason of every test known to fail on the gateway,
:data:`BASELINE` of every test known to fail on Radicale's own filesystem storage with the
installed Radicale (``run.py --baseline``). ``run.py`` prints failures outside these lists as
having no known reason, and lists tests named here that passed.
"""

REASONS: dict[str, str] = {
    "baseline": "fails the same way on Radicale's own filesystem storage: the checkout's test "
                "expects another Radicale release's answer than the installed one gives",
    "vcard": "uses an address book (vCard, MKCOL of an addressbook): the gateway serves "
             "Graph calendars only",
    "vtodo": "uses VTODO or VJOURNAL, or expects them in supported-calendar-component-set: "
             "Graph calendars hold events only",
    "create-collection": "its subject is creating a collection other than a calendar: MKCOL of "
                         "a principal that exists already (served mailboxes always have one, so "
                         "Radicale answers 405), of an address book, or of a plain collection "
                         "below a calendar's place (the gateway creates calendars only, and "
                         "refuses with 403 before Radicale looks for the parent)",
    "put-collection": "PUTs a whole calendar, which creates or replaces a collection and its "
                      "items: the gateway creates calendars with MKCALENDAR only and refuses "
                      "the PUT with 403 and the reason",
    "delete-default": "deletes the test's first calendar, which is the mailbox's default "
                      "calendar (a Graph mailbox always has one): Exchange keeps it, and the "
                      "gateway answers 403 \"the default calendar of ... cannot be deleted\"",
    "delete-collection": "deletes a mailbox principal or the root (or stores a resource "
                         "directly in the root): mailboxes are Exchange's (the gateway answers "
                         "403 with the reason), resources live in calendars",
    "move": "uses MOVE, which the storage plugin refuses with 403 (\"copy the event and "
            "delete the old one\")",
    "graph-form": "expects the DTSTAMP the client sent; the gateway serves the event as "
                  "Graph holds it, with DTSTAMP the time of its last change (RFC 5545 "
                  "3.8.7.2 for objects without METHOD)",
    "graph-limit": "Exchange refuses the event: a recurrence ending after the year 4500 "
                   "(ErrorRecurrenceEndDateTooBig), an occurrence moved past its neighbour "
                   "(ErrorOccurrenceCrossingBoundary, event7.ics)",
    "other-home": "logs in as another person (\"user\", \"testuser\") and reads the test's "
                  "mailbox, which Exchange's sharing does not give that login: every calendar "
                  "a login may open is in its own home, and another home answers 403 with "
                  "that reason",
}

_GRAPH_BY_REASON: dict[str, tuple[str, ...]] = {
    "baseline": ("test_report_free_busy",),
    "vcard": (
        "test_add_contact", "test_add_contact_broken", "test_add_contact_photo_with_data_uri",
        "test_add_contact_photo_with_data_uri_v3", "test_add_contact_v3",
        "test_add_contact_without_uid", "test_add_contacts_broken", "test_add_contacts_broken2",
        "test_add_contacts_broken2_no_uid", "test_addressbook_empty_filter",
        "test_addressbook_getcontenttype", "test_addressbook_prop_filter",
        "test_addressbook_prop_filter_all", "test_addressbook_prop_filter_any",
        "test_addressbook_prop_filter_structured", "test_get_vcard_exceed_size",
        "test_propfind_supported_address_data", "test_propfind_vaddressbook_allprop",
        "test_put_whole_addressbook", "test_put_whole_addressbook_without_uids", "test_verify",
    ),
    "vtodo": (
        "test_add_todo", "test_calendar_getcontenttype", "test_propfind_vcalendar_allprop",
        "test_time_range_filter_journals", "test_time_range_filter_journals_rrule",
        "test_time_range_filter_todos", "test_time_range_filter_todos_completed",
        "test_time_range_filter_todos_dtstart_due_completed",
        "test_time_range_filter_todos_rrule",
    ),
    "create-collection": (
        "test_mkcol", "test_mkcol_overwrite", "test_logging_conditional_mkcol",
        "test_mkcol_intermediate",
    ),
    "put-collection": (
        "test_put_whole_calendar", "test_put_whole_calendar_without_uids",
        "test_put_whole_calendar_case_sensitive_uids",
        "test_put_whole_calendar_multiple_events_with_same_uid",
        "test_overwrite_collection_global_permit",
        "test_overwrite_collection_global_forbid_explict_permit",
    ),
    "delete-default": (
        "test_delete_collection", "test_delete_collection_global_forbid_explicit_permit",
    ),
    "delete-collection": (
        "test_delete_root_collection", "test_existence_of_root_collections",
    ),
    "move": (
        "test_move", "test_move_unicode", "test_move_between_collections",
        "test_move_between_collections_with_at_encoded",
        "test_move_between_collections_with_at_native",
        "test_move_between_collections_overwrite", "test_move_letter_unicode_dst_pass",
        "test_report_sync_collection_move", "test_report_sync_collection_move_undo",
    ),
    "graph-form": ("test_update_event",),
    "other-home": (
        "test_authorization", "test_version_exposure_authenticated",
        "test_report_sync_collection_invalid_sync_token_with_user",
    ),
    "graph-limit": (
        "test_add_event_with_rrule_until_5000y_limit_2000000", "test_time_range_filter_events",
        "test_time_range_filter_without_comp_filter",
    ),
}

GRAPH: dict[str, str] = {name: reason for reason, names in _GRAPH_BY_REASON.items()
                         for name in names}
BASELINE: dict[str, str] = {"test_report_free_busy": "baseline"}
