"""``radicale-graph emulator``: the Graph emulator alone, with the demo tenant."""

from __future__ import annotations

import threading


def run_emulator(args) -> None:
    from ..emulator import Emulator, demo

    emu = Emulator(host=args.host, port=args.port, certfile=args.cert, keyfile=args.key,
                   load_demo=True, latency=args.latency,
                   housekeeping_interval=getattr(args, "housekeeping", None) or None)
    emu.start()
    print(f"Graph emulator at {emu.graph_url}", flush=True)
    print(f"identity endpoints at {emu.authority_host}/{demo.TENANT_ID}/", flush=True)
    print(f"CA certificate: {emu.ca_file}", flush=True)
    if emu.housekeeping_interval:
        print(f"housekeeping: one event's changeKey moves every {emu.housekeeping_interval} s",
              flush=True)
    print(f"demo tenant {demo.TENANT_ID}, app {demo.CLIENT_ID}, secret {demo.CLIENT_SECRET}",
          flush=True)
    for login, password in demo.USER_PASSWORDS.items():
        print(f"Microsoft sign-in (delegated mode): {login} / {password}", flush=True)
    try:
        threading.Event().wait()
    finally:
        emu.stop()
