"""storage/sync_state.py: RFC 6578 sync tokens, changes since a token, persistence."""

from __future__ import annotations

import pytest

from radicale_graph.storage.sync_state import TOKEN_PREFIX, SyncState


def test_tokens_name_epoch_and_revision_and_move_only_on_change():
    state = SyncState(None)
    first = state.token("cal")
    epoch, revision = state.revision("cal")
    assert first == f"{TOKEN_PREFIX}{epoch}-0" and revision == 0
    assert state.record("cal", {"a.ics": '"1"', "b.ics": '"2"'}) == 1
    assert state.token("cal") == f"{TOKEN_PREFIX}{epoch}-1"
    assert state.record("cal", {"a.ics": '"1"'}) == 1  # same etag: no change
    assert state.record("cal", {}, removed={"never.ics"}) == 1  # unknown href: no change
    assert state.token("cal") == f"{TOKEN_PREFIX}{epoch}-1"
    assert state.record("cal", {"a.ics": '"1b"'}) == 2


def test_changes_since_lists_changed_and_removed_hrefs_after_the_token():
    state = SyncState(None)
    start = state.token("cal")
    state.record("cal", {"a.ics": '"1"', "b.ics": '"2"', "c.ics": '"3"'})
    middle = state.token("cal")
    state.record("cal", {"b.ics": '"2b"'}, removed={"c.ics"})
    end = state.token("cal")
    assert state.changes_since("cal", start) == ["a.ics", "b.ics", "c.ics"]
    assert state.changes_since("cal", middle) == ["b.ics", "c.ics"]
    assert state.changes_since("cal", end) == []
    state.record("cal", {"c.ics": '"3b"'})  # re-created
    assert state.changes_since("cal", end) == ["c.ics"]


def test_a_complete_listing_removes_stored_hrefs_missing_from_it():
    state = SyncState(None)
    state.record("cal", {"a.ics": '"1"', "b.ics": '"2"'})
    before = state.token("cal")
    assert state.record("cal", {"a.ics": '"1"'}, complete=True) == 2
    assert state.changes_since("cal", before) == ["b.ics"]
    again = state.token("cal")
    assert state.record("cal", {"a.ics": '"1"'}, complete=True) == 2  # nothing new
    assert state.changes_since("cal", again) == []
    # Without complete, a missing href is not a removal.
    assert state.record("cal", {"z.ics": '"9"'}) == 3
    assert state.changes_since("cal", again) == ["z.ics"]


def test_calendars_are_independent():
    state = SyncState(None)
    state.record("one", {"a.ics": '"1"'})
    assert state.revision("two")[1] == 0
    assert state.revision("one")[0] != state.revision("two")[0]
    with pytest.raises(ValueError):
        state.changes_since("two", state.token("one"))


def test_state_persists_across_instances(tmp_path):
    path = str(tmp_path / "state" / "sync.sqlite")
    first = SyncState(path)
    start = first.token("cal")
    first.record("cal", {"a.ics": '"1"', "b.ics": '"2"'})
    token = first.token("cal")
    first.close()
    second = SyncState(path)
    assert second.token("cal") == token
    assert second.changes_since("cal", start) == ["a.ics", "b.ics"]
    # After a restart, a listing compared with the stored table reports what changed meanwhile.
    assert second.record("cal", {"a.ics": '"1"', "c.ics": '"3"'}, complete=True) == 2
    assert second.changes_since("cal", token) == ["b.ics", "c.ics"]
    second.close()


@pytest.mark.parametrize("make", [
    lambda epoch, revision: "http://example.com/sync/1",        # not ours
    lambda epoch, revision: f"{TOKEN_PREFIX}{epoch}-x",          # malformed revision
    lambda epoch, revision: f"{TOKEN_PREFIX}{epoch}",            # no revision
    lambda epoch, revision: f"{TOKEN_PREFIX}ffffffffffff-0",     # another epoch
    lambda epoch, revision: f"{TOKEN_PREFIX}{epoch}-{revision + 1}",  # from the future
])
def test_unknown_tokens_raise_value_error(make):
    state = SyncState(None)
    state.record("cal", {"a.ics": '"1"'})
    epoch, revision = state.revision("cal")
    with pytest.raises(ValueError):
        state.changes_since("cal", make(epoch, revision))
    assert state.changes_since("cal", f"{TOKEN_PREFIX}{epoch}-0") == ["a.ics"]
