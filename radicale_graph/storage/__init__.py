"""The Radicale storage plugin (``[storage] type = radicale_graph``): paths, calendar directory,
per-calendar cache kept current from Graph v1.0, sync state, writes. Orchestrates translation
and the Graph client; the modules and their jobs are listed in docs/architecture.md.

This package only exposes :class:`~.storage.Storage`, the class Radicale loads.
"""

from .storage import Storage

__all__ = ["Storage"]
