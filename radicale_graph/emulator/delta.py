"""Delta query rounds for events (api/event-delta.md, concepts/delta-query-events.md).

A round starts without a token and returns every item, then pages follow ``@odata.nextLink``
(``$skiptoken``) until the last page carries ``@odata.deltaLink`` (``$deltatoken``). The next
round, started from the deltaLink, returns items changed since, and
``{"@odata.type": "#microsoft.graph.event", "id": ..., "@removed": {"reason": "deleted"}}`` for
items deleted or gone from the view. An unknown token answers 410 ``syncStateNotFound``
(concepts/delta-query-overview.md, "Token duration"; concepts/errors.md code list);
:meth:`DeltaStates.expire` forgets every token issued so far, as when Exchange's sync state
expires.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from .errors import GraphError

MAX_STATES = 2000


@dataclass
class Round:
    """State behind one token: the scope it tracks and what the client has seen."""

    scope: tuple  # (mailbox guid, kind, calendar id, window start text, window end text)
    seq: int  # store sequence number when the round began
    ids: dict = field(default_factory=dict)  # item id -> record id, present at round's end
    # Remaining pages: lists of ``@removed`` dicts and (record, instance) refs, rendered
    # when served (GraphApi._delta_items).
    pages: list = field(default_factory=list)


class DeltaStates:
    """Tokens -> rounds, bounded (oldest forgotten first, as Exchange's token cache does)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._states: OrderedDict[str, Round] = OrderedDict()

    def _put(self, state: Round) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._states[token] = state
            while len(self._states) > MAX_STATES:
                self._states.popitem(last=False)
        return token

    def get(self, token: str, scope: tuple) -> Round:
        """The round behind ``token`` for this scope. Raises GraphError 410 when unknown."""
        with self._lock:
            state = self._states.get(token)
        if state is None or state.scope[:3] != scope[:3]:
            raise GraphError(
                410, "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data "
                "must be synchronized again.",
            )
        return state

    def expire(self) -> None:
        """Make every token issued so far answer 410 ``syncStateNotFound``."""
        with self._lock:
            self._states.clear()

    def page(self, items: list, size: int, scope: tuple, seq: int, ids: dict,
             ) -> tuple[list, str, str]:
        """Split ``items`` into pages; returns (first page, "skiptoken"|"deltatoken", token)."""
        pages = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        return self.next(Round(scope, seq, ids, pages))

    def next(self, state: Round) -> tuple[list, str, str]:
        """The next page of ``state``; returns (page, kind of the token, token). ``state`` is not
        changed, so following the same nextLink twice gives the same page."""
        page, rest = state.pages[0], state.pages[1:]
        if rest:
            return page, "skiptoken", self._put(Round(state.scope, state.seq, state.ids, rest))
        return page, "deltatoken", self._put(Round(state.scope, state.seq, state.ids, []))
