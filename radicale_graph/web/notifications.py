"""``POST /.notifications``: the webhook endpoint of Graph change notifications.

- ``?validationToken=...`` (the validation of a new subscription's notificationUrl and
  lifecycleNotificationUrl): answered at once with 200, ``Content-Type: text/plain`` and the
  URL-decoded token as the body (concepts/change-notifications-delivery-webhooks.md,
  "notificationUrl validation": within 10 seconds).
- Otherwise a changeNotificationCollection (api/resources/changenotificationcollection.md):
  handed to :meth:`radicale_graph.storage.notifications.SubscriptionManager.receive` and
  answered 202 Accepted without waiting for any work (Graph wants a 2xx within seconds, then
  retries; the same page, "HTTP codes and retry logic"). Items with an unknown subscription or
  a wrong ``clientState`` are ignored, also answered 202 (no retry storm, nothing revealed).

No CalDAV login applies; nothing from a notification is stored. 404 when notifications are
off, 405 for other methods, 413 for bodies over 1 MiB, 400 for unreadable JSON.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs

from . import answer

logger = logging.getLogger("radicale_graph.storage")

MAX_BODY = 1 << 20
MAX_TOKEN = 4096


def serve(environ, manager):
    """The WSGI triple (status line, header list, [body]) for one request."""
    status, headers, body = handle(environ, manager)
    return answer(status, {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
                           **headers}, body)


def handle(environ, manager) -> tuple[int, dict, bytes]:
    """(status, headers, body) for one request to ``/.notifications``."""
    text = {"Content-Type": "text/plain; charset=utf-8"}
    if manager is None:
        return 404, text, b"change notifications are off\n"
    if environ.get("REQUEST_METHOD") != "POST":
        return 405, dict(text, Allow="POST"), b"POST only\n"
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if "validationToken" in query:
        token = query["validationToken"][0]
        if len(token) > MAX_TOKEN:
            return 400, text, b"validation token too long\n"
        logger.info("Graph validated the change-notification URL")
        return 200, {"Content-Type": "text/plain"}, token.encode("utf-8")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > MAX_BODY:
        return 413, text, b"body too large\n"
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return 400, text, b"not a JSON change notification\n"
    manager.receive(payload)
    return 202, {}, b""


