"""Single-value extended properties the gateway keeps on Graph events for CalDAV clients.

Graph cannot store a client's UID (``iCalUId`` is assigned by Exchange) nor the resource name
the client PUT to, so both are kept as named string MAPI properties in the PS_PUBLIC_STRINGS
property set (resources/singlevaluelegacyextendedproperty.md, "id" formats). A third one,
``RadicaleGraph.Kept``, holds what Graph has no field for (see :mod:`.kept`). They can be
written inline on POST/PATCH and read with ``$expand=singleValueExtendedProperties($filter=...)``.
"""

PS_PUBLIC_STRINGS = "{00020329-0000-0000-C000-000000000046}"
UID_PROPERTY = f"String {PS_PUBLIC_STRINGS} Name RadicaleGraph.UID"
HREF_PROPERTY = f"String {PS_PUBLIC_STRINGS} Name RadicaleGraph.Href"
KEPT_PROPERTY = f"String {PS_PUBLIC_STRINGS} Name RadicaleGraph.Kept"
ALL_PROPERTIES = (UID_PROPERTY, HREF_PROPERTY, KEPT_PROPERTY)


def expand_filter() -> str:
    """The ``$expand`` clause that returns the gateway's extended properties with each event."""
    clauses = " or ".join(f"id eq '{pid}'" for pid in ALL_PROPERTIES)
    return f"singleValueExtendedProperties($filter={clauses})"


def _value_filter(property_id: str, value: str) -> str:
    literal = value.replace("'", "''")  # OData string literal
    return (f"singleValueExtendedProperties/Any(ep: ep/id eq '{property_id}' "
            f"and ep/value eq '{literal}')")


def uid_filter(uid: str) -> str:
    """``$filter`` matching events whose kept UID equals ``uid``."""
    return _value_filter(UID_PROPERTY, uid)


def href_filter(href: str) -> str:
    """``$filter`` matching events whose kept resource name equals ``href``."""
    return _value_filter(HREF_PROPERTY, href)


def read(event: dict) -> dict[str, str]:
    """The extended properties present on a Graph event, by property id (case-insensitive)."""
    wanted = {pid.lower(): pid for pid in ALL_PROPERTIES}
    found = {}
    for prop in event.get("singleValueExtendedProperties") or []:
        pid = wanted.get(str(prop.get("id", "")).lower())
        if pid:
            found[pid] = prop.get("value")
    return found


def values(uid: str, href: str, kept: str | None = None) -> list[dict]:
    """``singleValueExtendedProperties`` body items storing ``uid``, ``href`` and the kept
    data (the JSON string of ``kept.encode``; an empty object when None, so a PATCH replaces
    whatever an earlier write kept)."""
    return [{"id": UID_PROPERTY, "value": uid}, {"id": HREF_PROPERTY, "value": href},
            {"id": KEPT_PROPERTY, "value": kept or '{"v":1}'}]
