"""The plugin's options in Radicale's ``[storage]`` section, typed with defaults.

Radicale accepts plugin options in the plugin's own section when declared through
``Configuration.copy(plugin_schema)`` (Radicale DOCUMENTATION.md, "Storage plugins").
Every option is explained in ``config/radicale-graph.conf``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from radicale import config as radicale_config

from ..graph import GraphSettings
from ..graph.delegated import DEFAULT_SCOPES, load_key


def _list(value: str) -> list[str]:
    return [part.strip().lower() for part in str(value).replace("\n", ",").split(",")
            if part.strip()]


PLUGIN_CONFIG_SCHEMA = {"storage": {
    "tenant_id": {"value": "", "help": "Entra tenant id (GUID) or domain", "type": str},
    "client_id": {"value": "", "help": "application (client) id of the Entra app", "type": str},
    "client_secret": {"value": "", "help": "client secret (prefer client_secret_file)",
                      "type": str},
    "client_secret_file": {"value": "", "help": "file holding the client secret",
                           "type": radicale_config.filepath},
    "certificate_file": {"value": "", "help": "PEM certificate registered on the app",
                         "type": radicale_config.filepath},
    "certificate_key_file": {"value": "", "help": "PEM private key of that certificate",
                             "type": radicale_config.filepath},
    "authority_host": {"value": "https://login.microsoftonline.com",
                       "help": "Microsoft identity platform host", "type": str},
    "graph_url": {"value": "https://graph.microsoft.com/v1.0",
                  "help": "Microsoft Graph base URL", "type": str},
    "ca_file": {"value": "", "help": "extra CA certificate (PEM) to trust for both hosts",
                "type": radicale_config.filepath},
    "mailboxes": {"value": "", "help": "user mailboxes served (comma-separated addresses)",
                  "type": str},
    "rooms": {"value": "", "help": "room mailboxes served (comma-separated addresses)",
              "type": str},
    "refresh_interval": {"value": "30", "help": "seconds a calendar listing is trusted",
                         "type": radicale_config.positive_float},
    "calendar_list_interval": {"value": "300",
                               "help": "seconds a mailbox's list of calendars is trusted",
                               "type": radicale_config.positive_float},
    "delta_window": {"value": "90",
                     "help": "days back and forward tracked by calendarView/delta (Graph v1.0 "
                             "tracks changes only in a window; changes outside it are found "
                             "by the reconciliation listing)",
                     "type": radicale_config.positive_float},
    "full_listing_interval": {"value": "3600",
                              "help": "seconds between reconciliations (a light listing of every "
                                      "event's id and changeKey)",
                              "type": radicale_config.positive_float},
    "background_refresh": {"value": "True",
                           "help": "keep calendars that clients read fresh in the background, "
                                   "so no request waits for Graph",
                           "type": bool},
    "idle_after": {"value": "900",
                   "help": "seconds after the last read when a calendar is no longer kept "
                           "fresh in the background",
                   "type": radicale_config.positive_float},
    "notification_url": {"value": "",
                         "help": "public https URL of this gateway's /.notifications endpoint: "
                                 "Graph change notifications on the served mailboxes' events "
                                 "hint the background refresh (empty: off, polling only)",
                         "type": str},
    "notification_renewal_margin": {"value": "86400",
                                    "help": "seconds before a subscription expires when it is "
                                            "renewed",
                                    "type": radicale_config.positive_float},
    "state_folder": {"value": "~/.local/state/radicale-graph",
                     "help": "folder for sync-token state (kept across restarts)",
                     "type": radicale_config.filepath},
    "default_timezone": {"value": "UTC", "help": "IANA zone for floating times", "type": str},
    "timeout": {"value": "30", "help": "seconds per Graph HTTP call",
                "type": radicale_config.positive_float},
    "mode": {"value": "app", "help": "app (app-only token), delegated (people sign in with "
                                     "Microsoft and use app passwords) or both", "type": str},
    "public_url": {"value": "", "help": "the gateway's URL as browsers reach it (the sign-in "
                                        "redirect URI is <public_url>/.signin/callback)",
                   "type": str},
    "delegated_scopes": {"value": " ".join(DEFAULT_SCOPES),
                         "help": "delegated Graph permissions asked for at sign-in",
                         "type": str},
    "token_cache_key_file": {"value": "", "help": "file holding the Fernet key that encrypts "
                                                  "the token cache (else the environment "
                                                  "variable RADICALE_GRAPH_TOKEN_KEY)",
                             "type": radicale_config.filepath},
    "metrics_address": {"value": "", "help": "HOST:PORT serving Prometheus metrics at "
                                             "/metrics (empty: off), e.g. 127.0.0.1:9464",
                        "type": str},
}}

MODES = ("app", "delegated", "both")
NOTIFICATION_PATH = "/.notifications"  # the gateway's webhook (radicale_graph.web.notifications)


def check_notification_url(url: str) -> str:
    """``[storage] notification_url`` as given, or ValueError: Graph requires https
    (api/resources/subscription.md, notificationUrl) and the gateway serves
    :data:`NOTIFICATION_PATH`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.netloc:
        raise ValueError(f"[storage] notification_url must be an https URL (Graph delivers "
                         f"change notifications over HTTPS only), got {url!r}")
    if not parts.path.endswith(NOTIFICATION_PATH) or parts.query or parts.fragment:
        raise ValueError(f"[storage] notification_url must end with {NOTIFICATION_PATH} (the "
                         f"gateway's endpoint), e.g. https://caldav.example.com"
                         f"{NOTIFICATION_PATH}; got {url!r}")
    return url


@dataclass(frozen=True)
class GatewayOptions:
    """The gateway's own options: served mailboxes (lower-case addresses), room mailboxes,
    event freshness in seconds, the IANA zone for floating times, calendar-list freshness in
    seconds, and the folder of the sync state ("" keeps it in memory)."""

    mailboxes: tuple[str, ...]
    rooms: frozenset[str]
    refresh_interval: float
    default_timezone: str
    calendar_list_interval: float = 300.0
    state_folder: str = ""
    delta_window: float = 90.0
    full_listing_interval: float = 3600.0
    mode: str = "app"
    public_url: str = ""
    delegated_scopes: tuple[str, ...] = DEFAULT_SCOPES
    token_cache_key: bytes | None = field(default=None, repr=False)
    #: ``HOST:PORT`` of the Prometheus endpoint (:mod:`radicale_graph.metrics`); "" is off.
    metrics_address: str = ""
    background_refresh: bool = True
    idle_after: float = 900.0
    #: Change notifications (:mod:`.notifications`): "" is off.
    notification_url: str = ""
    notification_renewal_margin: float = 86400.0

    @property
    def delegated(self) -> bool:
        """Whether people may sign in with Microsoft (``mode`` delegated or both)."""
        return self.mode in ("delegated", "both")

    @property
    def app_only(self) -> bool:
        """Whether the app-only token serves ``mailboxes`` (``mode`` app or both)."""
        return self.mode in ("app", "both")


def read(configuration) -> tuple[GraphSettings, GatewayOptions]:
    """Typed settings from a Radicale configuration that was copied with
    :data:`PLUGIN_CONFIG_SCHEMA`. Raises ``ValueError`` (one line, no secret) when the
    credentials are incomplete or the secret file cannot be read."""
    def get(option: str):
        return configuration.get("storage", option)

    secret = get("client_secret") or None
    secret_file = get("client_secret_file")
    if secret_file:
        try:
            with open(secret_file, encoding="utf-8") as handle:
                secret = handle.read().strip()
        except OSError as exc:
            raise ValueError(f"cannot read [storage] client_secret_file {secret_file!r}: "
                             f"{exc.strerror}") from None
    if not get("tenant_id") or not get("client_id"):
        raise ValueError("[storage] tenant_id and client_id must be set (Entra ID > App "
                         "registrations > your app > Overview)")
    cert, key = get("certificate_file") or None, get("certificate_key_file") or None
    if not secret and not (cert and key):
        raise ValueError("[storage] needs client_secret (or client_secret_file), or "
                         "certificate_file and certificate_key_file")
    settings = GraphSettings(
        tenant_id=get("tenant_id"), client_id=get("client_id"), client_secret=secret,
        certificate_file=None if secret else cert, certificate_key_file=None if secret else key,
        authority_host=get("authority_host").rstrip("/"), graph_url=get("graph_url").rstrip("/"),
        ca_file=get("ca_file") or None, timeout=float(get("timeout")))
    mode = (get("mode") or "app").strip().lower()
    if mode not in MODES:
        raise ValueError(f"[storage] mode must be one of {', '.join(MODES)}, got {mode!r}")
    public_url = (get("public_url") or "").strip().rstrip("/")
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ValueError(f"[storage] public_url must be an absolute URL, got {public_url!r}")
    key = None
    if mode != "app":
        key = load_key(get("token_cache_key_file") or None)
        if not get("state_folder"):
            raise ValueError("[storage] state_folder must be set in delegated mode (it keeps "
                             "the encrypted token cache and the app passwords)")
    metrics_address = str(get("metrics_address") or "").strip()
    if metrics_address:
        from ..metrics import parse_address

        parse_address(metrics_address)  # ValueError naming the option
    notification_url = str(get("notification_url") or "").strip()
    notifications = {} if not notification_url else {
        "notification_url": check_notification_url(notification_url),
        "notification_renewal_margin": float(get("notification_renewal_margin"))}
    rooms = _list(get("rooms"))
    users = _list(get("mailboxes"))
    options = GatewayOptions(mailboxes=tuple(dict.fromkeys(users + rooms)),
                             rooms=frozenset(rooms),
                             refresh_interval=float(get("refresh_interval")),
                             default_timezone=get("default_timezone") or "UTC",
                             calendar_list_interval=float(get("calendar_list_interval")),
                             state_folder=get("state_folder"),
                             delta_window=float(get("delta_window")),
                             full_listing_interval=float(get("full_listing_interval")),
                             mode=mode, public_url=public_url,
                             delegated_scopes=tuple(str(get("delegated_scopes")).replace(
                                 ",", " ").split()),
                             token_cache_key=key, metrics_address=metrics_address,
                             background_refresh=bool(get("background_refresh")),
                             idle_after=float(get("idle_after")), **notifications)
    return settings, options
