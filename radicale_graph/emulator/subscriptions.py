"""Change notifications: Graph's ``/subscriptions`` on Outlook events, delivered over HTTPS.

Sources (learn.microsoft.com/graph; the Markdown of microsoftgraph/microsoft-graph-docs-contrib):

- api/resources/subscription.md: the properties; ``changeType`` is ``created``, ``updated``,
  ``deleted`` (comma-separated); ``notificationUrl`` and ``lifecycleNotificationUrl`` "must make
  use of the HTTPS protocol"; ``clientState`` at most 128 characters; the maximum length of a
  subscription on an Outlook **event** is 10,080 minutes (under 7 days); beyond it Graph answers
  400. api/subscription-post-subscriptions.md, api/subscription-update.md (PATCH
  ``expirationDateTime`` renews), api/subscription-get.md, api/subscription-list.md (an app-only
  token lists the app's subscriptions), api/subscription-delete.md.
- concepts/change-notifications-delivery-webhooks.md: validation: Graph POSTs
  ``{notificationUrl}?validationToken={token}`` (``Content-Type: text/plain; charset=utf-8``) and
  the endpoint must answer within 10 seconds, 200, ``text/plain``, the URL-decoded token as the
  body, else the create fails with 400 (both URLs are validated). Delivery: a 2xx is delivered;
  failures are retried with exponential back-off for up to 4 hours; more than 10 % of answers
  slower than 10 s in 10 minutes marks the endpoint "slow" (new notifications wait 10 s), more
  than 15 % "drop" (new notifications are dropped for 10 minutes). This emulator requires the
  acknowledgement within **3 seconds** (an answer after that counts as failed and is retried).
- api/resources/changenotification.md, concepts/change-notifications-lifecycle-events.md:
  notification shapes (``subscriptionId``, ``subscriptionExpirationDateTime``, ``changeType``,
  ``resource``, ``resourceData``, ``clientState``, ``tenantId``; lifecycle notifications carry
  ``lifecycleEvent`` instead: ``reauthorizationRequired``, ``subscriptionRemoved``, ``missed``).
  ``reauthorizationRequired`` is sent when the subscription is about to expire: here from 3 hours
  before expiry, then every 15 minutes (the page's illustration of the interval); dropped or
  given-up notifications produce ``missed``. An expired subscription is deleted silently.

Times follow the tenant's clock (``Identity.now()``, moved by ``Emulator.advance_clock``).
Deliveries trust ``ca_file`` (the gateway's self-signed certificate in tests) or the system's
CAs. :attr:`Subscriptions.deliveries` logs every POST the emulator made.
"""

from __future__ import annotations

import collections
import datetime as dt
import http.client
import json
import logging
import re
import ssl
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from .errors import GraphError, bad_request

logger = logging.getLogger("radicale_graph.emulator")

#: api/resources/subscription.md, "Maximum length of subscription per resource type": Outlook
#: event, 10,080 minutes (under 7 days).
MAX_MINUTES = 10080
CLIENT_STATE_MAX = 128
VALIDATION_TIMEOUT = 10.0  # seconds (change-notifications-delivery-webhooks.md)
ACK_TIMEOUT = 3.0  # seconds for a delivered notification
SLOW_AFTER = 10.0  # an answer slower than this counts toward "slow"/"drop"
RETRY_FOR = 4 * 3600.0  # seconds of retries before a notification is given up (then "missed")
REAUTHORIZE_WITHIN = 3 * 3600.0  # reauthorizationRequired from this long before expiry ...
REAUTHORIZE_EVERY = 15 * 60.0  # ... then every 15 minutes
CHANGE_TYPES = ("created", "updated", "deleted")
_RESOURCE = re.compile(r"^/?(?:me|users/([^/]+))(?:/calendars/([^/]+))?/events$", re.IGNORECASE)


@dataclass
class Subscription:
    """One subscription as stored; ``expires`` is a POSIX time on the tenant's clock."""

    id: str
    resource: str
    change_types: tuple[str, ...]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: float
    app_id: str
    creator_id: str
    mailbox: str  # lower-case UPN
    calendar_id: str | None
    tls: str = "v1_2"
    last_reauthorize: float | None = None

    def json(self, base: str | None = None) -> dict:
        body = {"id": self.id, "resource": self.resource, "applicationId": self.app_id,
                "changeType": ",".join(self.change_types), "clientState": self.client_state,
                "notificationUrl": self.notification_url, "notificationQueryOptions": None,
                "lifecycleNotificationUrl": self.lifecycle_url,
                "expirationDateTime": fmt(self.expires), "creatorId": self.creator_id,
                "includeResourceData": False, "latestSupportedTlsVersion": self.tls,
                "encryptionCertificate": None, "encryptionCertificateId": None,
                "notificationUrlAppId": None}
        if base:
            body = {"@odata.context": f"{base}/$metadata#subscriptions/$entity", **body}
        return body


@dataclass
class Delivery:
    """One POST made by the emulator: ``kind`` is validation, change or lifecycle."""

    kind: str
    url: str
    status: int | None  # None: no answer (refused, timed out)
    seconds: float
    ok: bool
    items: list = field(default_factory=list)


@dataclass
class _Pending:
    url: str
    items: list
    due: float  # time.monotonic()
    first: float
    attempt: int = 0
    kind: str = "change"


def fmt(posix: float) -> str:
    """``2016-11-20T18:23:45.9356913Z`` (seven fraction digits, as Graph writes them)."""
    value = dt.datetime.fromtimestamp(posix, dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond:06d}0Z"


def parse_time(text) -> float:
    """A DateTimeOffset text as POSIX seconds; 400 when unreadable."""
    if not isinstance(text, str):
        raise bad_request("expirationDateTime is required.", "InvalidRequest")
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip())
    cleaned = cleaned[:-1] + "+00:00" if cleaned.endswith(("Z", "z")) else cleaned
    try:
        value = dt.datetime.fromisoformat(cleaned)
    except ValueError:
        raise bad_request(f"Cannot convert the literal '{text}' to the expected type "
                          "'Edm.DateTimeOffset'.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


class Subscriptions:
    """The tenant's subscriptions and the delivery machinery (see the module text).

    ``store``: the emulator's Store (its ``listeners`` report every event write);
    ``identity``: the tenant (clock, apps); ``ca_file``: PEM to trust for deliveries."""

    def __init__(self, store, identity, ca_file: str | None = None):
        self.store = store
        self.identity = identity
        self.ca_file = ca_file
        self.ack_timeout = ACK_TIMEOUT
        self.validation_timeout = VALIDATION_TIMEOUT
        self.subscriptions: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []
        self.expired: list[str] = []  # ids deleted because they expired
        self.lock = threading.RLock()
        self._changes: list = []
        self._queue: list[_Pending] = []
        self._answers: dict[str, collections.deque] = {}  # url -> (monotonic, slow)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        store.listeners.append(self._written)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the delivery thread."""
        self._stop.clear()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="graph-emulator-push")
        self._thread = threading.Thread(target=self._run, name="graph-emulator-notifications",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop delivering (pending notifications are dropped)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def now(self) -> float:
        """The tenant's clock (POSIX seconds)."""
        return self.identity.now()

    def wake(self) -> None:
        """Check expiry and reauthorization at once (after the clock moved)."""
        self._wake.set()

    # -- test controls ----------------------------------------------------------------------
    def active(self, mailbox: str | None = None) -> list[Subscription]:
        """Live subscriptions (of ``mailbox``)."""
        with self.lock:
            return [s for s in self.subscriptions.values()
                    if mailbox is None or s.mailbox == mailbox.lower()]

    def remove(self, sub_id: str, event: str | None = "subscriptionRemoved") -> None:
        """Remove a subscription as Exchange does by itself, then send the lifecycle
        notification ``event`` (when it has a lifecycle URL): ``subscriptionRemoved``, or
        ``missed`` (Graph lost it and tells only that notifications were missed), or None."""
        with self.lock:
            sub = self.subscriptions.pop(sub_id)
        if event:
            self._lifecycle(sub, event)

    def lifecycle(self, sub_id: str, event: str) -> None:
        """Send the lifecycle notification ``event`` for a live subscription now."""
        with self.lock:
            sub = self.subscriptions[sub_id]
        self._lifecycle(sub, event)

    # -- the Graph API ----------------------------------------------------------------------
    def handle(self, req):
        """Serve ``/subscriptions[/{id}]``: returns a graph_api.Response."""
        from .graph_api import Response, read_json

        seg = req.segments
        app_id = (req.claims.get("appid") or "").lower()
        if len(seg) == 1:
            if req.method == "GET":
                with self.lock:
                    mine = [s.json() for s in self.subscriptions.values() if s.app_id == app_id]
                return Response(200, {"@odata.context": f"{req.base}/$metadata#subscriptions",
                                      "value": mine})
            if req.method != "POST":
                raise _not_allowed()
            return Response(201, self._create(read_json(req.body), req).json(req.base))
        if len(seg) != 2:
            raise bad_request(f"Resource not found for the segment '{seg[2]}'.")
        with self.lock:
            sub = self.subscriptions.get(seg[1])
        if sub is None or sub.app_id != app_id:
            raise GraphError(404, "ResourceNotFound", "The object was not found.")
        if req.method == "GET":
            return Response(200, sub.json(req.base))
        if req.method == "DELETE":
            with self.lock:
                self.subscriptions.pop(sub.id, None)
            return Response(204)
        if req.method != "PATCH":
            raise _not_allowed()
        body = read_json(req.body)
        if not isinstance(body, dict):
            raise bad_request("Invalid request payload.")
        if "expirationDateTime" in body:
            expires = self._check_expiry(body["expirationDateTime"])
            with self.lock:
                sub.expires = expires
                sub.last_reauthorize = None  # renewing also reauthorizes
        if "notificationUrl" in body:
            url = self._check_url(body["notificationUrl"], "notificationUrl")
            self._validate(url)
            sub.notification_url = url
        return Response(200, sub.json(req.base))

    def _create(self, body, req) -> Subscription:
        if not isinstance(body, dict):
            raise bad_request("Invalid request payload.")
        kinds = [k.strip().lower() for k in str(body.get("changeType") or "").split(",")
                 if k.strip()]
        if not kinds or any(k not in CHANGE_TYPES for k in kinds):
            raise bad_request("Invalid 'changeType' attribute: "
                              f"'{body.get('changeType')}'.", "ExtensionError")
        url = self._check_url(body.get("notificationUrl"), "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        if lifecycle is not None:
            lifecycle = self._check_url(lifecycle, "lifecycleNotificationUrl")
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > CLIENT_STATE_MAX):
            raise bad_request(f"clientState must be at most {CLIENT_STATE_MAX} characters.",
                              "ExtensionError")
        if body.get("includeResourceData"):
            raise bad_request("includeResourceData requires an encryptionCertificate; this "
                              "emulator serves basic notifications only.", "ExtensionError")
        resource = str(body.get("resource") or "")
        match = _RESOURCE.match(resource)
        if not match:
            raise bad_request(f"Unsupported resource '{resource}': this emulator subscribes "
                              "to Outlook events (users/{id}/events, me/events, "
                              "users/{id}/calendars/{id}/events).", "ExtensionError")
        user, calendar_id = match.group(1), match.group(2)
        delegated = req.claims.get("scp") is not None
        if user is None:
            if not delegated:
                raise bad_request("/me request is only valid with delegated authentication "
                                  "flow.")
            user = req.claims.get("upn", "")
        box = self.store.mailbox(user)
        if box is None:
            raise GraphError(404, "ExtensionError", "Operation: Create; Exception: [Status "
                             "Code: NotFound; Reason: The requested user is invalid.]")
        if delegated:
            scopes = {s.lower() for s in str(req.claims.get("scp") or "").split()}
            own = box.upn.lower() == str(req.claims.get("upn") or "").lower()
            if not own or not scopes & {"calendars.read", "calendars.readwrite"}:
                raise _access_denied()
        else:
            app = self.identity.app(req.claims.get("appid", ""))
            if app is not None and app.calendar_access(box.upn, False):
                raise _access_denied()
        if calendar_id is not None:
            self.store.calendar(box.upn, calendar_id)
        expires = self._check_expiry(body.get("expirationDateTime"))
        self._validate(url)
        if lifecycle is not None:
            self._validate(lifecycle)
        sub = Subscription(
            id=str(uuid.uuid4()), resource=resource, change_types=tuple(kinds),
            notification_url=url, lifecycle_url=lifecycle, client_state=state, expires=expires,
            app_id=(req.claims.get("appid") or "").lower(),
            creator_id=str(req.claims.get("oid") or ""), mailbox=box.upn.lower(),
            calendar_id=calendar_id,
            tls=str(body.get("latestSupportedTlsVersion") or "v1_2"))
        with self.lock:
            self.subscriptions[sub.id] = sub
        return sub

    def _check_url(self, url, name: str) -> str:
        if not isinstance(url, str) or not url:
            raise bad_request(f"{name} is required.", "InvalidRequest")
        if urlsplit(url).scheme.lower() != "https":
            # subscription.md: "This URL must make use of the HTTPS protocol."
            raise bad_request(f"Subscription validation request failed. {name} must use "
                              "https.", "ValidationError")
        return url

    def _check_expiry(self, text) -> float:
        expires = parse_time(text)
        now = self.now()
        if expires <= now:
            raise bad_request("Subscription expiration can only be in the future.",
                              "ExtensionError")
        if expires > now + MAX_MINUTES * 60:
            raise bad_request(f"Operation: Create; Exception: [Status Code: BadRequest; Reason: "
                              f"Subscription expiration can only be {MAX_MINUTES} minutes in "
                              f"the future.]", "ExtensionError")
        return expires

    def _validate(self, url: str) -> None:
        """The validation handshake; 400 ValidationError unless the endpoint echoes the token
        (text/plain, 200) within 10 seconds."""
        token = f"Validation: Testing client application reachability for subscription " \
                f"Request-Id: {uuid.uuid4()}"
        sep = "&" if urlsplit(url).query else "?"
        target = f"{url}{sep}validationToken={quote(token, safe='')}"
        status, answer, seconds, headers = self._post(
            target, b"", "text/plain; charset=utf-8", self.validation_timeout)
        ok = (status == 200 and seconds <= self.validation_timeout
              and headers.get("content-type", "").lower().startswith("text/plain")
              and answer.decode("utf-8", "replace") == token)
        self._record(Delivery("validation", url, status, seconds, ok))
        if not ok:
            why = ("timed out" if status is None and seconds >= self.validation_timeout
                   else "must respond with 200 OK to validation request")
            raise bad_request("Subscription validation request failed. Notification endpoint "
                              f"{why}.", "ValidationError")

    # -- change detection ---------------------------------------------------------------------
    def _written(self, rec, previous_seq: int) -> None:
        """Store hook, under the store's lock: remember the write (resolved by the thread)."""
        self._changes.append((rec, previous_seq))
        self._wake.set()

    def _resolve(self, rec, previous_seq: int):
        with self.store.lock:
            for box in self.store.mailboxes():
                if box.events.get(rec.id) is rec:
                    return box, "created" if previous_seq == 0 else "updated", rec
                if rec.id in box.deleted:
                    return box, "deleted", rec
        return None, None, rec

    def _collect(self) -> None:
        changes, self._changes = self._changes, []
        batches: dict[str, list] = {}
        tenant = self.identity.tenant_id
        for rec, previous in changes:
            box, kind, rec = self._resolve(rec, previous)
            if box is None:
                continue
            now = self.now()
            with self.lock:
                subs = [s for s in self.subscriptions.values()
                        if s.mailbox == box.upn.lower() and kind in s.change_types
                        and s.expires > now
                        and (s.calendar_id is None or s.calendar_id == rec.calendar_id)]
            for sub in subs:
                path = f"Users/{box.guid}/Events/{rec.id}"
                batches.setdefault(sub.notification_url, []).append({
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": fmt(sub.expires),
                    "changeType": kind, "resource": path,
                    "resourceData": {"@odata.type": "#Microsoft.Graph.Event",
                                     "@odata.id": path,
                                     "@odata.etag": f'W/"{rec.data.get("changeKey", "")}"',
                                     "id": rec.id},
                    "clientState": sub.client_state, "tenantId": tenant})
        for url, items in batches.items():
            self._enqueue(url, items, "change")

    def _lifecycle(self, sub: Subscription, event: str) -> None:
        if not sub.lifecycle_url:
            return
        self._enqueue(sub.lifecycle_url, [{
            "subscriptionId": sub.id, "subscriptionExpirationDateTime": fmt(sub.expires),
            "tenantId": self.identity.tenant_id, "clientState": sub.client_state,
            "lifecycleEvent": event}], "lifecycle")

    def _enqueue(self, url: str, items: list, kind: str) -> None:
        now = time.monotonic()
        state = self._endpoint_state(url)
        if state == "drop" and kind == "change":
            self._missed(items)
            return
        delay = 10.0 if state == "slow" else 0.0
        with self.lock:
            self._queue.append(_Pending(url, items, now + delay, now, kind=kind))
        self._wake.set()

    def _missed(self, items: list) -> None:
        with self.lock:
            subs = {i["subscriptionId"] for i in items}
            targets = [self.subscriptions[s] for s in subs if s in self.subscriptions]
        for sub in targets:
            self._lifecycle(sub, "missed")

    def _endpoint_state(self, url: str) -> str:
        answers = self._answers.get(url)
        if not answers:
            return "ok"
        horizon = time.monotonic() - 600
        while answers and answers[0][0] < horizon:
            answers.popleft()
        if len(answers) < 10:
            return "ok"
        share = sum(1 for _, slow in answers if slow) / len(answers)
        return "drop" if share > 0.15 else "slow" if share > 0.10 else "ok"

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.1)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._collect()
                self._expire()
                self._send_due()
            except Exception:  # noqa: BLE001 - the thread must survive a bad record
                logger.exception("emulator: change notifications failed this turn")

    def _expire(self) -> None:
        now = self.now()
        reauthorize = []
        with self.lock:
            for sub in list(self.subscriptions.values()):
                if sub.expires <= now:
                    del self.subscriptions[sub.id]
                    self.expired.append(sub.id)
                elif sub.expires - now <= REAUTHORIZE_WITHIN and (
                        sub.last_reauthorize is None
                        or now - sub.last_reauthorize >= REAUTHORIZE_EVERY):
                    sub.last_reauthorize = now
                    reauthorize.append(sub)
        for sub in reauthorize:
            self._lifecycle(sub, "reauthorizationRequired")

    def _send_due(self) -> None:
        now = time.monotonic()
        with self.lock:
            due = [p for p in self._queue if p.due <= now]
            self._queue = [p for p in self._queue if p.due > now]
        for pending in due:
            if self._pool is None:
                return
            try:
                self._pool.submit(self._deliver, pending)
            except RuntimeError:
                return

    def _deliver(self, pending: _Pending) -> None:
        payload = json.dumps({"value": pending.items}).encode()
        status, _, seconds, _ = self._post(pending.url, payload, "application/json",
                                           SLOW_AFTER)
        ok = status is not None and 200 <= status < 300 and seconds <= self.ack_timeout
        self._answers.setdefault(pending.url, collections.deque()).append(
            (time.monotonic(), status is None or seconds > SLOW_AFTER))
        self._record(Delivery(pending.kind, pending.url, status, seconds, ok, pending.items))
        if ok or self._stop.is_set():
            return
        pending.attempt += 1
        wait = min(2.0 ** pending.attempt, 600.0)
        if time.monotonic() + wait - pending.first > RETRY_FOR:
            if pending.kind == "change":
                self._missed(pending.items)
            return
        pending.due = time.monotonic() + wait
        with self.lock:
            self._queue.append(pending)

    def _post(self, url: str, body: bytes, content_type: str, timeout: float):
        """(status or None, body, seconds, lower-case headers) of one HTTPS POST."""
        parts = urlsplit(url)
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        started = time.monotonic()
        conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                           context=context)
        try:
            conn.request("POST", path, body=body, headers={
                "Content-Type": content_type, "User-Agent": "Microsoft-Graph-Notifications"})
            resp = conn.getresponse()
            data = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, data, time.monotonic() - started, headers
        except (OSError, http.client.HTTPException):
            return None, b"", time.monotonic() - started, {}
        finally:
            conn.close()

    def _record(self, delivery: Delivery) -> None:
        with self.lock:
            self.deliveries.append(delivery)


def _not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest",
                      "Specified HTTP method is not allowed for the request target.")


def _access_denied() -> GraphError:
    return GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: "
                      "Forbidden; Reason: Access is denied. Check credentials and try again.]")
