"""The ``radicale-graph`` command: ``demo``, ``emulator``, ``serve`` and ``feed``."""

from __future__ import annotations

import argparse
import sys

from .. import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radicale-graph",
        description="CalDAV gateway to Microsoft 365 calendars (Radicale over Microsoft Graph)")
    parser.add_argument("--version", action="version", version=f"radicale-graph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the gateway on the embedded demo tenant")
    demo.add_argument("--host", default="127.0.0.1", help="CalDAV listen address")
    demo.add_argument("--port", type=int, default=5232, help="CalDAV listen port")
    demo.add_argument("--emulator", metavar="URL",
                      help="use a Graph emulator already running at URL instead of starting one")
    demo.add_argument("--ca-file", metavar="FILE",
                      help="CA certificate (PEM) of the emulator given with --emulator")
    demo.add_argument("--log-level", default="info", help="Radicale log level")
    demo.add_argument("--verbose", action="store_true",
                      help="show Radicale's start-up lines (otherwise logged at debug)")
    demo.add_argument("--housekeeping", type=float, default=None, metavar="SECONDS",
                      help="let the started emulator move one random event's changeKey every "
                           "SECONDS, as Exchange does by itself (default: off)")

    emulator = sub.add_parser("emulator", help="run the Graph emulator with the demo tenant")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8443)
    emulator.add_argument("--cert", metavar="FILE", help="TLS certificate (PEM) to serve")
    emulator.add_argument("--key", metavar="FILE", help="private key (PEM) of --cert")
    emulator.add_argument("--latency", type=float, default=0.0,
                          help="seconds added to every Graph request")
    emulator.add_argument("--housekeeping", type=float, default=None, metavar="SECONDS",
                          help="move one random event's changeKey every SECONDS, as Exchange "
                               "does by itself (default: off)")

    serve = sub.add_parser("serve", help="run the gateway against a Microsoft 365 tenant")
    serve.add_argument("--config", required=True, metavar="FILE",
                       help="Radicale configuration with [storage] type = radicale_graph")
    serve.add_argument("--verbose", action="store_true",
                       help="show Radicale's start-up lines (otherwise logged at debug)")

    check = sub.add_parser("check", help="check the tenant's setup for a configuration: "
                                         "token roles, each mailbox's read and write access, "
                                         "clock, state folder, sign-in redirect URI; exit "
                                         "status 0 only when all pass")
    check.add_argument("--config", required=True, metavar="FILE",
                       help="Radicale configuration with [storage] type = radicale_graph")

    from .feeds import add_parser as add_feed_parser

    add_feed_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``radicale-graph`` console script. Returns the exit status:
    0 after a clean shutdown, 2 when start-up fails (one line on stderr names the cause)."""
    args = build_parser().parse_args(argv)
    from .gateway import StartupError

    try:
        if args.command == "check":
            from .check import run_check

            return run_check(args.config)
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args)
        elif args.command == "emulator":
            from .emulator import run_emulator

            run_emulator(args)
        elif args.command == "feed":
            from .feeds import run_feed

            run_feed(args)
        else:
            from .gateway import serve_config_file

            serve_config_file(args.config, verbose=args.verbose)
    except StartupError as exc:
        print(f"radicale-graph: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
