"""The mixin that runs Radicale's ``TestBaseRequests`` against the gateway.

``class TestGraphBaseRequests(GraphRequests, test_base.TestBaseRequests)`` keeps every test
method and assertion of Radicale's class and changes only its fixtures and helpers:

* ``setup_method``: each test gets a fresh mailbox in the Graph emulator (``tNNN@contoso.com``,
  with its default calendar and nothing else), the test root is mounted at it, and the
  configuration ``[storage] type = radicale_graph`` serves it (and the mailboxes of
  :data:`LOGINS`, fresh as well), after Radicale's own set-up.
* ``configure``: builds the gateway's WSGI application (:class:`radicale_graph.app.
  GatewayApplication`, as ``radicale-graph serve`` runs it) behind the URL mount of
  :mod:`.mount`, and wraps the configured rights backend so it judges test paths.
* ``mkcalendar`` of the test's first root-level calendar (without a body): a Graph mailbox
  always has its default calendar, and Radicale's tests expect a root holding only the
  calendars they made, so the first one is the mailbox's default calendar. The shim checks
  through the gateway that the path is a calendar collection (PROPFIND ``resourcetype``) and
  answers 201. Every further MKCALENDAR, one with a body, and every MKCALENDAR of the tests
  whose subject it is (:data:`SUBJECT_IS_MKCALENDAR`) is the real request to the gateway,
  which creates a Graph calendar (``POST /users/{id}/calendars``).
* ``delete`` of the default calendar as the first step of ``_test_filter`` (which resets its
  collection with DELETE and MKCALENDAR before each query): Exchange keeps a mailbox's default
  calendar, so it is emptied instead, by a real DELETE of each of its resources through the
  gateway, and the following MKCALENDAR shim answers 201 for the emptied calendar. Other
  calendars are deleted and created again for real.

The plugin's sync-token state (``[storage] state_folder``) lives in the test's temporary folder,
so it survives the application being rebuilt within a test and goes with the test.
``full_sync_token_support`` keeps Radicale's default (True): the sync-collection tests check
incremental changes.
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from urllib.parse import quote, unquote

from radicale_graph.app import GatewayApplication
from radicale_graph.emulator import Emulator, demo

from .mount import Mount, MountedApplication, MountedRights

DEFAULT_CALENDAR = "calendar"  # the gateway's name for a mailbox's default calendar
# Logins Radicale's tests use with a principal (``login="user:"``, ``"testuser:"``). Radicale
# creates a login's principal on first request; the gateway serves principals only for its
# mailboxes, so the run serves mailboxes of these names as well.
LOGINS = ("user", "testuser")
SUBJECT_IS_MKCALENDAR = frozenset({"test_mkcalendar", "test_logging_conditional_mkcalendar"})
CALDAV_CALENDAR = "{urn:ietf:params:xml:ns:caldav}calendar"
PROPFIND_RESOURCETYPE = """\
<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>"""

_emulator: Emulator | None = None
_emulator_lock = threading.Lock()
_mailbox_numbers = itertools.count(1)
#: Test name -> number of Graph requests the gateway made during the test (run.py reports the
#: passing tests that made none: they exercise Radicale's request handling, not the storage).
GRAPH_REQUESTS: dict[str, int] = {}


def use_emulator(emulator: Emulator) -> None:
    """Serve the tests from ``emulator`` (started, with the demo app registered)."""
    global _emulator
    _emulator = emulator


def emulator() -> Emulator:
    """The emulator given to :func:`use_emulator`, or a new empty one (started on first use,
    stopped at exit) with the demo tenant's app registered."""
    global _emulator
    with _emulator_lock:
        if _emulator is None:
            emu = Emulator(load_demo=False)
            emu.register_app(demo.CLIENT_ID, secret=demo.CLIENT_SECRET)
            emu.start()
            atexit.register(emu.stop)
            _emulator = emu
        return _emulator


def storage_options(emu: Emulator, mailboxes: list[str], state_folder: str) -> dict[str, str]:
    """``[storage]`` options for the gateway serving ``mailboxes`` from ``emu``, keeping its
    sync-token state in ``state_folder``."""
    return {"type": "radicale_graph", "tenant_id": demo.TENANT_ID, "client_id": demo.CLIENT_ID,
            "client_secret": demo.CLIENT_SECRET, "authority_host": emu.authority_host,
            "graph_url": emu.graph_url, "ca_file": emu.ca_file or "",
            "mailboxes": ", ".join(mailboxes), "state_folder": state_folder}


class GraphRequests:
    """Fixtures and helpers for Radicale's ``TestBaseRequests`` on the Graph gateway (see the
    module docstring). Put it first in the bases."""

    def setup_method(self, method=None) -> None:
        self.test_name = method.__name__ if method is not None else ""
        emu = emulator()
        number = next(_mailbox_numbers)
        self.mailbox = f"t{number:03d}@contoso.com"
        for mailbox in (self.mailbox, *LOGINS):
            emu.store.add_mailbox(mailbox, f"Radicale test {number} ({mailbox})")
        self.mount = Mount(self.mailbox, principals=LOGINS)
        self._reset_armed = False
        self._emptied: set[str] = set()
        super().setup_method()
        self.configure({"storage": storage_options(
            emu, [self.mailbox, *LOGINS], os.path.join(self.colpath, "radicale-graph-state"))})
        self._graph_log_start = len(emu.request_log)

    def teardown_method(self, method=None) -> None:
        GRAPH_REQUESTS[self.test_name] = len(emulator().request_log) - self._graph_log_start
        super().teardown_method()

    # -- application --------------------------------------------------------------------
    def configure(self, config_) -> None:
        self.configuration.update(config_, "test", privileged=True)
        rights_type = self.configuration.get("rights", "type")
        if not isinstance(rights_type, MountedRights):
            self.configuration.update(
                {"rights": {"type": MountedRights(self.mount, rights_type)}},
                "radicale-graph mount", privileged=True)
        self._build_application()

    def _build_application(self) -> None:
        gateway = GatewayApplication(self.configuration)
        # Exchange's sharing gives an anonymous request nothing (it decides per person);
        # Radicale's tests are mostly anonymous, so they act as the mounted mailbox's owner
        # there, while Radicale itself still sees an anonymous user (its 401s stay).
        storage, mailbox = gateway._storage, self.mailbox
        exchange_rights = getattr(storage, "exchange_rights", None)
        if exchange_rights is not None:  # not before the test configured the plugin
            storage.exchange_rights = lambda user, path: exchange_rights(user or mailbox, path)
        self.application = MountedApplication(gateway, self.mount)

    # -- collection set-up --------------------------------------------------------------
    def mkcalendar(self, path: str, data: str | None = None, check: int | None = 201,
                   **kwargs):
        name = Mount.collection_name(path)
        if name is not None and name in self._emptied:
            self._emptied.discard(name)
        elif (self.test_name in SUBJECT_IS_MKCALENDAR or data is not None or kwargs
                or name is None or self.mount.claimed(DEFAULT_CALENDAR)):
            return super().mkcalendar(path, data, check=check, **kwargs)
        else:
            self.mount.claim(name, DEFAULT_CALENDAR)
        _, responses = self.propfind(path, PROPFIND_RESOURCETYPE)
        status_code, resourcetype = responses[quote(path)]["D:resourcetype"]
        assert status_code == 200 and resourcetype.find(CALDAV_CALENDAR) is not None, \
            f"provisioned {path} is not a calendar collection through the gateway"
        status = 201
        assert check is None or status == check, f"{status} != {check}"
        return status, ""

    def _test_filter(self, *args, **kwargs):
        self._reset_armed = True
        try:
            return super()._test_filter(*args, **kwargs)
        finally:
            self._reset_armed = False

    def delete(self, path: str, check: int | None = 200, **kwargs):
        armed, self._reset_armed = self._reset_armed, False
        name = Mount.collection_name(path)
        if armed and not kwargs and self.mount.names.get(name) == DEFAULT_CALENDAR:
            self._empty(path)
            self._emptied.add(name)
            status = 200
            assert check is None or status == check, f"{status} != {check}"
            return status, {path: status}
        return super().delete(path, check=check, **kwargs)

    def _empty(self, path: str) -> None:
        """DELETE every resource of the calendar at test path ``path`` through the gateway."""
        _, responses = self.propfind(path, PROPFIND_RESOURCETYPE, HTTP_DEPTH="1")
        for href in responses:
            if href != quote(path):
                super().delete(unquote(href))
