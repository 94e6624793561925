"""radicale-graph: a CalDAV gateway to Microsoft 365 (a Radicale storage plugin over Graph).

Layers, one way: CalDAV request -> :mod:`radicale_graph.storage` (paths, cache, sync) ->
:mod:`radicale_graph.translation` (iCalendar <-> Graph JSON, pure) and
:mod:`radicale_graph.graph` (auth, HTTP, retries). :mod:`radicale_graph.emulator` is an
independent Graph for tests and the demo; :mod:`radicale_graph.cli` is the command line.

Radicale loads the plugin as ``radicale_graph.Storage`` (``[storage] type = radicale_graph``);
it is imported lazily so that importing the emulator does not load the gateway.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "Storage":
        from .storage import Storage

        return Storage
    raise AttributeError(name)
