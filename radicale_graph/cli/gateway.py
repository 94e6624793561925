"""Starting the gateway: configuration checks, then Radicale's server with
:class:`radicale_graph.app.GatewayApplication`."""

from __future__ import annotations

import logging
import signal
import socket
import threading

import radicale.server
from radicale import config as radicale_config
from radicale import log as radicale_log

logger = logging.getLogger("radicale_graph")


class StartupError(Exception):
    """Start-up cannot go on; ``str()`` is one line naming the cause and the fix."""


def load_configuration(path: str):
    """Radicale configuration from ``path``. Raises :class:`StartupError`."""
    try:
        with open(path, encoding="utf-8"):
            pass
    except OSError as exc:
        raise StartupError(f"cannot read configuration file {path!r}: {exc.strerror}") from None
    try:
        return radicale_config.load([(path, False)])
    except Exception as exc:
        raise StartupError(f"invalid configuration {path!r}: {exc}") from None


def read_options(configuration):
    """``(GraphSettings, GatewayOptions)`` of a Radicale configuration whose storage is the
    gateway. Raises :class:`StartupError` (one line naming the option, never a secret)."""
    from ..storage import config as plugin_config

    if configuration.get("storage", "type") != "radicale_graph":
        raise StartupError("[storage] type must be radicale_graph in the configuration")
    try:
        return plugin_config.read(configuration.copy(plugin_config.PLUGIN_CONFIG_SCHEMA))
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def check(configuration) -> None:
    """Fail fast: the plugin options are complete, a token can be had, and each served
    mailbox answers. Raises :class:`StartupError` (one line, never a secret)."""
    from ..graph import AuthError, GraphClient, GraphError

    settings, options = read_options(configuration)
    if options.delegated:
        import os

        from ..graph.delegated import EncryptedTokenCache
        from ..storage.storage import TOKEN_CACHE_FILE

        try:
            EncryptedTokenCache(os.path.join(options.state_folder, TOKEN_CACHE_FILE),
                                options.token_cache_key).load()
        except ValueError as exc:
            raise StartupError(str(exc)) from None
    if not options.mailboxes and options.mode == "app":
        raise StartupError("[storage] mailboxes lists no mailbox to serve: add the users' and "
                           "rooms' addresses (comma-separated)")
    if options.mode == "app":
        logger.info("group calendars are not served in app-only mode: Graph allows Microsoft "
                    "365 group calendars only with delegated permissions (application "
                    "permissions are \"Not supported\", api/group-list-events.md); set "
                    "[storage] mode = both or delegated and let people sign in with Microsoft")
    client = GraphClient(settings)
    try:
        client.check_credentials()
        for mailbox in options.mailboxes:
            try:
                client.get_json(f"/users/{mailbox}/calendar", mailbox=mailbox,
                                operation="read default calendar")
            except GraphError as exc:
                logger.warning("%s", exc)
    except AuthError as exc:
        raise StartupError(str(exc)) from None
    finally:
        client.close()


def serve(configuration, ready: threading.Event | None = None,
          shutdown: socket.socket | None = None) -> None:
    """Serve CalDAV with Radicale's server until ``shutdown`` is written to or closed, or
    SIGINT/SIGTERM arrives (when called from the main thread)."""
    from ..app import GatewayApplication

    radicale.server.Application = GatewayApplication  # the server builds its app from this
    if shutdown is None:
        shutdown, signal_end = socket.socketpair()
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, lambda *_: signal_end.close())
    if ready is not None:
        ready.set()
    from .. import metrics

    # [storage] metrics_address: Prometheus endpoint for as long as Radicale serves.
    from ..storage.storage import closing_built

    # Background refresh and change notifications end with the server.
    with closing_built(), metrics.serving(configuration):
        radicale.server.serve(configuration, shutdown)


class StartupQuiet(logging.Filter):
    """Radicale's start-up lines (every INFO/NOTICE record of the ``radicale`` logger up to
    and including "Radicale server ready": versions, each module's settings) become DEBUG
    records: shown at ``level = debug`` only. Later records pass unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.ready or record.levelno > radicale_log.LOG_LEVEL_NOTICE:
            return True
        if record.getMessage().startswith("Radicale server ready"):
            self.ready = True
        if record.levelno > logging.DEBUG:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return radicale_log.logger.isEnabledFor(logging.DEBUG)
        return True


def setup_logging(configuration, verbose: bool = False) -> None:
    """Radicale's logging at ``[logging] level``, the ``radicale_graph`` loggers at the same
    level (one info line per CalDAV request, debug lines per Graph request,
    :mod:`radicale_graph.request_log`), and Radicale's start-up info lines at debug unless
    ``verbose``."""
    for old in [f for f in radicale_log.logger.filters if isinstance(f, StartupQuiet)]:
        radicale_log.logger.removeFilter(old)
    if not verbose:
        radicale_log.logger.addFilter(StartupQuiet())
    radicale_log.setup()
    level = configuration.get("logging", "level")
    radicale_log.set_level(level, configuration.get("logging", "backtrace_on_debug"))
    logging.getLogger("radicale_graph").setLevel(radicale_log.logger.level)


def serve_config_file(path: str, verbose: bool = False) -> None:
    """``radicale-graph serve --config FILE [--verbose]``."""
    configuration = load_configuration(path)
    check(configuration)  # before Radicale's logging, so a failure prints one line only
    setup_logging(configuration, verbose)
    serve(configuration)
