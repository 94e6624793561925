"""``radicale-graph feed create|list|revoke``: room and calendar feeds for displays.

The feeds live in ``[storage] state_folder``/feeds.sqlite3 (:mod:`radicale_graph.storage.
feed_tokens`); the running gateway reads that file on every request, so a feed created or
revoked here takes effect at once, without a restart.
"""

from __future__ import annotations

import datetime as dt
import sys

from .gateway import StartupError, load_configuration, read_options


def add_parser(sub) -> None:
    """Add the ``feed`` subcommand group to the ``radicale-graph`` parser's subparsers."""
    from ..storage.feed_tokens import PRIVACY

    feed = sub.add_parser("feed", help="read-only iCal feeds of rooms and calendars for "
                                       "displays (create, list, revoke)")
    actions = feed.add_subparsers(dest="feed_command", required=True)
    create = actions.add_parser("create", help="create a feed and print its URL (once)")
    create.add_argument("--config", required=True, metavar="FILE",
                        help="the gateway's Radicale configuration")
    create.add_argument("--calendar", required=True, metavar="MAILBOX/SEGMENT",
                        help="the calendar, as in its CalDAV path, e.g. "
                             "room-adams@contoso.com/calendar")
    create.add_argument("--days-back", type=int, default=1, metavar="DAYS",
                        help="whole days before today in the feed (default 1)")
    create.add_argument("--days-ahead", type=int, default=14, metavar="DAYS",
                        help="whole days after today in the feed (default 14)")
    create.add_argument("--expand", action="store_true",
                        help="expand recurring series into plain occurrences (for displays "
                             "that cannot read RRULE)")
    create.add_argument("--privacy", choices=PRIVACY, default="full",
                        help="full: all details except of private events (busy blocks); "
                             "subject: subject and times only; busy: busy blocks only "
                             "(default full)")
    create.add_argument("--name", default="", help="calendar name the feed announces "
                                                   "(default: the room's or calendar's)")
    create.add_argument("--no-check", action="store_true",
                        help="do not ask Graph whether the calendar exists")
    listing = actions.add_parser("list", help="list the feeds (never their tokens)")
    listing.add_argument("--config", required=True, metavar="FILE")
    revoke = actions.add_parser("revoke", help="revoke a feed: its URL answers 404 at once")
    revoke.add_argument("--config", required=True, metavar="FILE")
    revoke.add_argument("id", help="the feed's id (feed list)")


def _options(path: str):
    configuration = load_configuration(path)
    settings, options = read_options(configuration)
    if not options.state_folder:
        raise StartupError("[storage] state_folder must be set: feeds are kept in "
                           "state_folder/feeds.sqlite3")
    return configuration, settings, options


def base_url(configuration, options) -> str:
    """``public_url``, else ``http://<first [server] hosts entry>`` (a wildcard address is
    replaced by ``localhost``: put the gateway's real name there)."""
    if options.public_url:
        return options.public_url
    hosts = configuration.get("server", "hosts")
    host, port = (hosts[0] if hosts else ("localhost", 5232))[:2]
    if host in ("0.0.0.0", "::", ""):
        host = "localhost"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _check_calendar(settings, options, mailbox: str, segment: str) -> None:
    from ..graph import GraphClient, GraphError
    from ..storage.directory import Directory

    if mailbox not in options.mailboxes:
        raise StartupError(f"{mailbox} is not served with the app-only token: add it to "
                           f"[storage] mailboxes (or rooms)")
    client = GraphClient(settings)
    try:
        info = Directory(client, 1.0).find(mailbox, segment)
    except GraphError as exc:
        raise StartupError(f"cannot read the calendars of {mailbox}: {exc}") from None
    finally:
        client.close()
    if info is None:
        raise StartupError(f"{mailbox} has no calendar at /{mailbox}/{segment}/ (the "
                           f"default calendar is {mailbox}/calendar)")


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_feed(args, out=None) -> None:
    """Run one ``feed`` action. Raises :class:`StartupError` (one line) on failure."""
    from ..storage.feed_tokens import FeedTokens

    out = out or sys.stdout
    configuration, settings, options = _options(args.config)
    tokens = FeedTokens(options.state_folder)
    try:
        if args.feed_command == "create":
            mailbox, _, segment = args.calendar.strip().strip("/").partition("/")
            mailbox = mailbox.lower()
            if not mailbox or not segment or "/" in segment:
                raise StartupError(f"--calendar must be <mailbox>/<segment>, e.g. "
                                   f"room-adams@contoso.com/calendar, got {args.calendar!r}")
            if not args.no_check:
                _check_calendar(settings, options, mailbox, segment)
            try:
                feed, token = tokens.create(
                    mailbox, segment, days_back=args.days_back, days_ahead=args.days_ahead,
                    expand=args.expand, privacy=args.privacy, name=args.name)
            except ValueError as exc:
                raise StartupError(str(exc)) from None
            print(f"{base_url(configuration, options)}/.feeds/{token}.ics", file=out)
            print(f"feed {feed.id}: {feed.calendar}, {feed.days_back} days back, "
                  f"{feed.days_ahead} days ahead, privacy {feed.privacy}"
                  f"{', expanded' if feed.expand else ''}. The URL is shown only now; "
                  f"revoke it with: radicale-graph feed revoke --config {args.config} "
                  f"{feed.id}", file=sys.stderr)
        elif args.feed_command == "list":
            print("id        calendar  back  ahead  expand  privacy  created  last used  "
                  "revoked", file=out)
            for feed in tokens.list():
                print(f"{feed.id}  {feed.calendar}  {feed.days_back}  {feed.days_ahead}  "
                      f"{'yes' if feed.expand else 'no'}  {feed.privacy}  "
                      f"{_when(feed.created)}  {_when(feed.last_used)}  "
                      f"{_when(feed.revoked)}", file=out)
        elif args.feed_command == "revoke":
            if not tokens.revoke(args.id):
                raise StartupError(f"no live feed with id {args.id!r} (see feed list)")
            print(f"feed {args.id} revoked", file=out)
    finally:
        tokens.close()
