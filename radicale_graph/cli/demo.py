"""``radicale-graph demo``: the gateway on the embedded demo tenant.

Starts the Graph emulator (or uses one given with ``--emulator``), writes a Radicale
configuration, a password file (every demo login's password is ``demo``) and a rights file
into a temporary folder, prints the CalDAV URL and the logins, and serves until interrupted.
"""

from __future__ import annotations

import os
import tempfile

from .gateway import StartupError, check, serve, setup_logging

DEMO_PASSWORD = "demo"

RIGHTS = """\
# Radicale rights file syntax. Exchange's own sharing decides who reads and writes which
# calendar (every calendar a login may open is listed in its own home /<login>/); this file
# can only narrow that.
[root]
user: .+
collection:
permissions: R

[own-home]
user: .+
collection: {user}
permissions: R

[calendars-in-own-home]
user: .+
collection: {user}/[^/]+
permissions: rw
"""


def write_demo_files(folder: str, *, host: str, port: int, authority: str, graph_url: str,
                     ca_file: str, storage_options: dict[str, str] | None = None) -> str:
    """Write the demo's Radicale configuration, users and rights into ``folder``; return the
    configuration path. ``storage_options`` adds or overrides ``[storage]`` options. With
    ``mode`` delegated or both in them, the logins go through ``radicale_graph.auth`` (app
    passwords from the sign-in page, htpasswd as fallback in mode both), a token cache key is
    generated into ``folder``/token.key and ``public_url`` defaults to
    ``http://{host}:{port}``."""
    from ..emulator import demo
    from ..graph.delegated import generate_key

    users = os.path.join(folder, "users")
    with open(users, "w", encoding="utf-8") as handle:
        # Carol (Bob's delegate) has no mailbox served by the demo: her home lists Bob's.
        for login in demo.USERS + demo.ROOMS + demo.DELEGATES:
            handle.write(f"{login}:{DEMO_PASSWORD}\n")
    rights = os.path.join(folder, "rights")
    with open(rights, "w", encoding="utf-8") as handle:
        handle.write(RIGHTS)
    secret = os.path.join(folder, "client_secret")
    with open(secret, "w", encoding="utf-8") as handle:
        handle.write(demo.CLIENT_SECRET)
    storage = {
        "type": "radicale_graph", "tenant_id": demo.TENANT_ID, "client_id": demo.CLIENT_ID,
        "client_secret_file": secret, "authority_host": authority, "graph_url": graph_url,
        "ca_file": ca_file, "mailboxes": ", ".join(demo.USERS), "rooms": ", ".join(demo.ROOMS),
        "state_folder": os.path.join(folder, "state"),
        **(storage_options or {})}
    auth_type = "htpasswd"
    if storage.get("mode", "app") != "app":
        auth_type = "radicale_graph.auth"
        if not storage.get("token_cache_key_file"):
            key_file = os.path.join(folder, "token.key")
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(generate_key() + "\n")
            storage["token_cache_key_file"] = key_file
        storage.setdefault("public_url", f"http://{host}:{port}")
    storage_lines = "".join(f"{k} = {v}\n" for k, v in storage.items())
    path = os.path.join(folder, "radicale.conf")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"""\
[server]
hosts = {host}:{port}

[auth]
type = {auth_type}
htpasswd_filename = {users}
htpasswd_encryption = plain

[rights]
type = from_file
file = {rights}

[web]
type = none

[storage]
{storage_lines}
[logging]
level = info
""")
    return path


def run_demo(args) -> None:
    from radicale import config as radicale_config

    from ..emulator import Emulator, demo

    emu = None
    if args.emulator:
        if not args.ca_file:
            raise StartupError("--emulator needs --ca-file: the emulator's CA certificate "
                               "(it prints its path at start)")
        base = args.emulator.rstrip("/")
        authority, graph_url, ca_file = base, f"{base}/v1.0", args.ca_file
    else:
        # --housekeeping SECONDS: Exchange-like changeKey moves (docs/emulator.md, Housekeeping).
        emu = Emulator(load_demo=True,
                       housekeeping_interval=getattr(args, "housekeeping", None) or None)
        emu.start()
        authority, graph_url, ca_file = emu.authority_host, emu.graph_url, emu.ca_file
    try:
        with tempfile.TemporaryDirectory(prefix="radicale-graph-demo-") as folder:
            # Both modes: rooms and displays with htpasswd logins and the app-only token;
            # people sign in at /.signin/ and use their app password (delegated token).
            path = write_demo_files(folder, host=args.host, port=args.port,
                                    authority=authority, graph_url=graph_url, ca_file=ca_file,
                                    storage_options={"mode": "both"})
            configuration = radicale_config.load([(path, False)])
            configuration.update({"logging": {"level": args.log_level}}, "command line")
            check(configuration)
            setup_logging(configuration, verbose=getattr(args, "verbose", False))
            # A short banner (one screen with the first log lines): URL, logins, sign-in.
            url = f"http://{args.host}:{args.port}"
            banner = [f"CalDAV: {url}/  (Graph: {graph_url})"]
            banner += [f"  login {login}  password {DEMO_PASSWORD}"
                       for login in demo.USERS + demo.ROOMS]
            banner.append(f"Sign in with Microsoft: {url}/.signin/  (then use the app password)")
            banner += [f"  {login} / {password}"
                       for login, password in demo.USER_PASSWORDS.items()]
            banner.append("One log line per CalDAV request (--verbose: start-up details). "
                          "Ctrl-C stops.")
            print("\n".join(banner), flush=True)
            serve(configuration)
    finally:
        if emu is not None:
            emu.stop()
