"""A stateful emulator of Microsoft Graph v1.0 (calendars) and the Microsoft identity platform.

It serves HTTPS with Graph's URLs, JSON shapes, headers, status codes and error bodies, so the
gateway can be tested end to end without a tenant. It is an independent implementation: nothing
here is imported from the gateway's ``translation``, ``graph`` or ``storage`` packages.

    from radicale_graph.emulator import Emulator, demo
    emu = Emulator(load_demo=True)
    emu.start()
    ...  # authority f"{emu.url}/{demo.TENANT_ID}", Graph at emu.graph_url, verify=emu.ca_file
    # delegated: emu.url/{tenant}/oauth2/v2.0/authorize signs in demo.USER_PASSWORDS users
    emu.stop()
"""

from . import demo
from .demo import CLIENT_ID, CLIENT_SECRET, ROOMS, TENANT_ID, USER_PASSWORDS, USERS
from .server import Emulator, LoggedRequest

__all__ = [
    "CLIENT_ID", "CLIENT_SECRET", "Emulator", "LoggedRequest", "ROOMS", "TENANT_ID",
    "USER_PASSWORDS", "USERS", "demo",
]
