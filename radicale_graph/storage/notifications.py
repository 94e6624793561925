"""Graph change notifications on the served mailboxes' events: hints for the background refresh.

With ``[storage] notification_url`` set (the public https URL of ``/.notifications``, served by
:mod:`radicale_graph.web.notifications`), :class:`SubscriptionManager` keeps one Graph
subscription per served mailbox on ``users/{mailbox}/events`` (``created,updated,deleted``):

- it creates them (POST /subscriptions, api/subscription-post-subscriptions.md) with a random
  ``clientState`` per subscription and the same URL as ``lifecycleNotificationUrl``; Graph then
  validates both URLs (concepts/change-notifications-delivery-webhooks.md, "notificationUrl
  validation": the endpoint echoes ``validationToken`` as text/plain within 10 seconds);
- it renews each one (PATCH ``expirationDateTime``, api/subscription-update.md)
  ``notification_renewal_margin`` seconds before it expires, asking each time for the longest
  lifetime Graph allows on Outlook events, 10,080 minutes (api/resources/subscription.md,
  "Maximum length of subscription per resource type"), less a few minutes for clock skew;
- it handles lifecycle notifications (concepts/change-notifications-lifecycle-events.md):
  ``reauthorizationRequired`` renews at once, ``subscriptionRemoved`` recreates the subscription
  and resyncs, ``missed`` resyncs and recreates the subscription when Graph no longer has it;
- a change notification whose ``subscriptionId`` and ``clientState`` match (api/resources/
  changenotification.md: compare ``clientState`` to validate the source) is only a **hint**:
  :meth:`BackgroundRefresher.hint` runs one delta round for that mailbox's watched calendars,
  at most one per mailbox per ``HINT_INTERVAL`` seconds (later hints are coalesced). No data
  in a notification reaches the cache, so a forged one costs at most one such round, and one
  with a wrong ``clientState`` costs nothing.

Polling goes on regardless: the refresher refreshes every calendar it watches each
``refresh_interval``, so when notifications are off or failing (creation refused, endpoint
unreachable, subscriptions lost) calendars are as fresh as without them. Failed creations and
renewals are retried with back-off. Subscriptions of an earlier run (same URL, unknown
``clientState``) are deleted at start. Times use this host's clock (keep it synchronized, as
for tokens).
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import secrets
import threading
import time
import weakref
from dataclasses import dataclass

from ..graph import GraphError, NotFound

logger = logging.getLogger("radicale_graph.storage")

#: api/resources/subscription.md: an Outlook event subscription lasts at most 10,080 minutes.
MAX_LIFETIME = 10080 * 60.0
SKEW = 10 * 60.0  # asked lifetime is this much shorter than the maximum
HINT_INTERVAL = 1.0  # at most one hint (delta round) per mailbox per this many seconds
TICK = 1.0
FIRST_TRY = 1.0  # seconds after start (the server is listening by then)
BACKOFF_MAX = 300.0
MANAGERS: weakref.WeakSet = weakref.WeakSet()  # running managers (tests stop them)
clock_offset = 0.0  # seconds added to this host's clock (tests move time on both sides)


def now() -> float:
    """This host's clock (POSIX seconds) plus :data:`clock_offset`."""
    return time.time() + clock_offset


def fmt(posix: float) -> str:
    value = dt.datetime.fromtimestamp(posix, dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse(text: str) -> float | None:
    try:
        head, _, frac = str(text).rstrip("Zz").partition(".")
        value = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
        return value.timestamp() + (float("0." + frac[:6]) if frac.isdigit() else 0.0)
    except ValueError:
        return None


@dataclass
class _Sub:
    mailbox: str
    id: str = ""
    client_state: str = ""
    expires: float = 0.0
    next_try: float = 0.0  # time.monotonic() of the next creation/renewal attempt
    failures: int = 0
    renew_now: bool = False
    verify: bool = False


class SubscriptionManager:
    """Keeps the subscriptions of ``mailboxes`` and turns notifications into hints (see the
    module text). ``client``: the app-only GraphClient; ``hint(mailbox)``: the refresher's."""

    def __init__(self, client, mailboxes, url: str, hint, *, margin: float = 86400.0,
                 lifetime: float = MAX_LIFETIME - SKEW, hint_interval: float = HINT_INTERVAL):
        self.client = client
        self.url = url
        self._hint = hint
        self.margin = min(margin, lifetime / 2)
        self.lifetime = lifetime
        self.hint_interval = hint_interval
        self._subs = {m: _Sub(m) for m in mailboxes}
        self._by_id: dict[str, _Sub] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_hint: dict[str, float] = {}
        self._timers: dict[str, threading.Timer] = {}
        self.counts = {"notifications": 0, "hints": 0, "ignored": 0, "created": 0,
                       "renewed": 0, "lifecycle": 0}

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread that creates and renews subscriptions (idempotent)."""
        with self._lock:
            if self._thread is None:
                first = time.monotonic() + FIRST_TRY
                for sub in self._subs.values():
                    sub.next_try = first
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="radicale-graph-subscriptions")
                self._thread.start()
        MANAGERS.add(self)

    def stop(self, unsubscribe: bool = False) -> None:
        """End the thread; with ``unsubscribe`` delete the subscriptions from Graph."""
        self._stopped.set()
        self._wake.set()
        for timer in list(self._timers.values()):
            timer.cancel()
        if unsubscribe:
            for sub in list(self._subs.values()):
                if sub.id:
                    self._delete(sub.id)
        MANAGERS.discard(self)

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped.is_set()

    def subscription_id(self, mailbox: str) -> str:
        """The live subscription of ``mailbox`` ("" while there is none)."""
        sub = self._subs.get(mailbox.lower())
        return sub.id if sub else ""

    # -- notifications ------------------------------------------------------------------------
    def receive(self, payload) -> int:
        """Handle a POSTed changeNotificationCollection; returns how many items were
        authentic. Never calls Graph itself (lifecycle work goes to the thread)."""
        items = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(items, list):
            return 0
        good = 0
        hinted: set[str] = set()
        for item in items[:1000]:
            if not isinstance(item, dict):
                continue
            with self._lock:
                self.counts["notifications"] += 1
                sub = self._by_id.get(str(item.get("subscriptionId") or ""))
            state = item.get("clientState")
            if sub is None or not isinstance(state, str) or not hmac.compare_digest(
                    state.encode(), sub.client_state.encode()):
                with self._lock:
                    self.counts["ignored"] += 1
                continue
            good += 1
            event = item.get("lifecycleEvent")
            if event is None:
                hinted.add(sub.mailbox)
                continue
            logger.info("Graph lifecycle notification %s for the subscription of %s",
                        event, sub.mailbox)
            with self._lock:
                self.counts["lifecycle"] += 1
                if event == "reauthorizationRequired":
                    sub.renew_now = True
                elif event == "subscriptionRemoved":
                    self._forget(sub)
                    hinted.add(sub.mailbox)  # changes since the removal were not notified
                elif event == "missed":
                    sub.verify = True
                    hinted.add(sub.mailbox)
                sub.next_try = min(sub.next_try, time.monotonic())
            self._wake.set()
        for mailbox in hinted:
            self.hint(mailbox)
        return good

    def hint(self, mailbox: str) -> None:
        """Ask for a delta round of ``mailbox``'s watched calendars: at once, or when
        ``hint_interval`` has passed since the last one (hints in between are coalesced)."""
        with self._lock:
            elapsed = time.monotonic() - self._last_hint.get(mailbox, -1e9)
            if elapsed < self.hint_interval:
                if mailbox not in self._timers and not self._stopped.is_set():
                    timer = threading.Timer(self.hint_interval - elapsed, self._deferred,
                                            (mailbox,))
                    timer.daemon = True
                    self._timers[mailbox] = timer
                    timer.start()
                return
            self._last_hint[mailbox] = time.monotonic()
            self.counts["hints"] += 1
        self._hint(mailbox)

    def _deferred(self, mailbox: str) -> None:
        with self._lock:
            self._timers.pop(mailbox, None)
        if not self._stopped.is_set():
            self.hint(mailbox)

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        self._cleanup()
        while not self._stopped.is_set():
            for sub in list(self._subs.values()):
                if self._stopped.is_set():
                    return
                try:
                    self._maintain(sub)
                except Exception as exc:  # noqa: BLE001 - keep the thread; polling goes on
                    logger.info("change notifications for %s: %s", sub.mailbox, exc)
                    self._failed(sub)
            self._wake.wait(TICK)
            self._wake.clear()

    def _maintain(self, sub: _Sub) -> None:
        mono = time.monotonic()
        if mono < sub.next_try and not sub.renew_now:
            return
        if not sub.id:
            self._create(sub)
        elif sub.verify:
            sub.verify = False
            try:
                self.client.request("GET", f"/subscriptions/{sub.id}", mailbox=None,
                                    operation="read a subscription")
            except NotFound:
                with self._lock:
                    self._forget(sub)
                self._create(sub)
        elif sub.renew_now or sub.expires - now() <= self.margin:
            self._renew(sub)

    def _create(self, sub: _Sub) -> None:
        state = secrets.token_urlsafe(48)  # 64 characters (clientState: at most 128)
        body = {"changeType": "created,updated,deleted", "notificationUrl": self.url,
                "lifecycleNotificationUrl": self.url, "resource": f"users/{sub.mailbox}/events",
                "expirationDateTime": fmt(now() + self.lifetime), "clientState": state,
                "latestSupportedTlsVersion": "v1_2"}
        # The validation request arrives while this call waits: the state must be known.
        resp = self.client.request("POST", "/subscriptions", mailbox=None, json=body,
                                   operation="create a change-notification subscription")
        data = resp.body or {}
        with self._lock:
            sub.id, sub.client_state = str(data.get("id") or ""), state
            sub.expires = parse(data.get("expirationDateTime")) or now() + self.lifetime
            sub.failures, sub.renew_now, sub.verify = 0, False, False
            self._by_id[sub.id] = sub
        self.counts["created"] += 1
        logger.info("change notifications on for %s (subscription until %s)", sub.mailbox,
                    data.get("expirationDateTime"))

    def _renew(self, sub: _Sub) -> None:
        try:
            resp = self.client.request(
                "PATCH", f"/subscriptions/{sub.id}", mailbox=None,
                json={"expirationDateTime": fmt(now() + self.lifetime)},
                operation="renew a change-notification subscription")
        except NotFound:  # expired or removed meanwhile: a new one
            with self._lock:
                self._forget(sub)
            self._create(sub)
            return
        data = resp.body or {}
        with self._lock:
            sub.expires = parse(data.get("expirationDateTime")) or now() + self.lifetime
            sub.failures, sub.renew_now = 0, False
        self.counts["renewed"] += 1

    def _failed(self, sub: _Sub) -> None:
        with self._lock:
            sub.failures += 1
            sub.renew_now = False
            sub.next_try = time.monotonic() + min(BACKOFF_MAX, 2.0 ** sub.failures)

    def _forget(self, sub: _Sub) -> None:
        self._by_id.pop(sub.id, None)
        sub.id, sub.client_state, sub.expires = "", "", 0.0
        sub.next_try = time.monotonic()

    def _cleanup(self) -> None:
        """Delete this URL's subscriptions left by an earlier run (their clientState is lost,
        their notifications would be ignored)."""
        try:
            resp = self.client.request("GET", "/subscriptions", mailbox=None,
                                       operation="list change-notification subscriptions")
        except GraphError as exc:
            logger.info("cannot list earlier subscriptions: %s", exc)
            return
        for old in (resp.body or {}).get("value") or []:
            if old.get("notificationUrl") == self.url and old.get("id"):
                self._delete(old["id"])

    def _delete(self, sub_id: str) -> None:
        try:
            self.client.request("DELETE", f"/subscriptions/{sub_id}", mailbox=None,
                                operation="delete a change-notification subscription")
        except GraphError:
            pass


def for_storage(storage) -> SubscriptionManager | None:
    """The started manager of a Storage, or None when ``notification_url`` is unset, no
    mailbox is served app-only, or the background refresh is off (then a hint has nothing to
    refresh and polling on reads stays as it is)."""
    options = storage.options
    if not options.notification_url:
        return None
    if storage.refresher is None or not options.app_only or not options.mailboxes:
        logger.warning("[storage] notification_url is set but change notifications need "
                       "background_refresh = True and app-only mailboxes; polling only")
        return None
    for running in list(MANAGERS):
        if running.url == options.notification_url and not running.stopped:
            # Radicale builds a second Storage for its sharing module (radicale/sharing): one
            # manager per URL, hinting the first (the application's) refresher.
            return running
    manager = SubscriptionManager(storage.client, options.mailboxes, options.notification_url,
                                  storage.refresher.hint,
                                  margin=options.notification_renewal_margin)
    manager.start()
    weakref.finalize(storage, manager.stop)
    return manager
