"""LOCATION, GEO, X-APPLE-STRUCTURED-LOCATION, VLOCATION ⇄ ``location``, ``locations``.

RFC 5545 3.8.1.6 (GEO), 3.8.1.7 (LOCATION); RFC 9073 section 7.2 (VLOCATION) and 6.6
(STRUCTURED-DATA); Graph resources/location.md and event.md. One VLOCATION per Graph
location that has more than a name, carrying it as JSON under :data:`LOCATION_SCHEMA`.
"""

from __future__ import annotations

import json

import icalendar

from .. import lines
from .base import Context, Field, Rendering

LOCATION = "location"
LOCATIONS = "locations"
# RFC 9073 STRUCTURED-DATA schema naming a Graph location in a VLOCATION.
LOCATION_SCHEMA = "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.location"
LOCATION_FIELDS = ("displayName", "locationEmailAddress", "address", "coordinates",
                   "locationUri", "locationType")


def to_graph(parts, body: dict) -> None:
    """``location`` (LOCATION's name; one VLOCATION's Graph location when its name matches;
    GEO or Apple's ``geo:`` URI as coordinates) and ``locations`` (several VLOCATIONs whose
    names joined by ``"; "`` are LOCATION)."""
    event = parts.vevent
    name = str(event.get("LOCATION", "") or "")
    location: dict = {"displayName": name}
    structured = []
    for component in event.subcomponents:
        if component.name != "VLOCATION":
            continue
        entry = None
        data = component.get("STRUCTURED-DATA")
        if data is not None and str(data.params.get("SCHEMA", "")) == LOCATION_SCHEMA:
            try:
                entry = json.loads(str(data))
            except ValueError:
                entry = None
        if not isinstance(entry, dict):
            entry = {"displayName": str(component.get("NAME", ""))}
            geo = _geo(component.get("GEO"))
            if geo:
                entry["coordinates"] = geo
        structured.append(entry)
    names = [str(e.get("displayName") or "") for e in structured]
    if len(structured) == 1 and names[0] == name:
        location = dict(structured[0])
    elif len(structured) > 1 and "; ".join(n for n in names if n) == name:
        body[LOCATIONS] = structured
    coordinates = _geo(event.get("GEO")) or _apple_geo(event.get("X-APPLE-STRUCTURED-LOCATION"))
    if coordinates and "coordinates" not in location and LOCATIONS not in body:
        location["coordinates"] = coordinates
    body[LOCATION] = location


def _geo(prop) -> dict | None:
    if prop is None:
        return None
    try:
        latitude, longitude = prop.latitude, prop.longitude
    except AttributeError:
        try:
            latitude, longitude = (float(v) for v in str(prop.to_ical().decode()
                                                         if hasattr(prop, "to_ical")
                                                         else prop).split(";"))
        except ValueError:
            return None
    return {"latitude": float(latitude), "longitude": float(longitude)}


def _apple_geo(prop) -> dict | None:
    if prop is None:
        return None
    text = str(prop)
    if not text.lower().startswith("geo:"):
        return None
    try:
        latitude, longitude = (float(v) for v in text[4:].split(";")[0].split(",")[:2])
    except ValueError:
        return None
    return {"latitude": latitude, "longitude": longitude}


def graph_locations(event: dict) -> list[dict]:
    """The event's locations with their writable fields (``locations``, else ``location``)."""
    found = event.get(LOCATIONS)
    if not found:
        found = [event[LOCATION]] if (event.get(LOCATION) or {}).get("displayName") else []
    out = []
    for item in found or []:
        entry = {k: item[k] for k in LOCATION_FIELDS if item.get(k) not in (None, "", {})}
        if entry.get("locationType", "default").lower() == "default":
            entry.pop("locationType", None)
        for inner in ("address", "coordinates"):
            if isinstance(entry.get(inner), dict):
                entry[inner] = {k: v for k, v in entry[inner].items()
                                if v not in (None, "") and not k.startswith("@")}
                if not entry[inner]:
                    del entry[inner]
        if entry:
            out.append(entry)
    return out


def to_ical(event: dict, ctx: Context, master: dict | None, out: Rendering) -> None:
    """LOCATION from ``location.displayName``; a VLOCATION per location with more than a
    name."""
    name = (event.get(LOCATION) or {}).get("displayName")
    if name:
        out.add("LOCATION", name)
    found = graph_locations(event)
    if not found or (len(found) == 1 and set(found[0]) <= {"displayName"}):
        return
    for number, entry in enumerate(found, 1):
        component = icalendar.cal.Component()
        component.name = "VLOCATION"
        component.add("UID", f"location-{number}")
        if entry.get("displayName"):
            component.add("NAME", entry["displayName"])
        component.add("STRUCTURED-DATA", json.dumps(entry, separators=(",", ":"),
                                                     sort_keys=True),
                      parameters={"VALUE": "TEXT", "FMTTYPE": "application/json",
                                  "SCHEMA": LOCATION_SCHEMA})
        out.append(("LOCATION", lines.component_text(component)))


def canonical(group: str, event: dict) -> list:
    """LOCATION: the name and the writable fields of every location."""
    name = (event.get(LOCATION) or {}).get("displayName") or ""
    return [name, graph_locations(event)]


def same(name: str, event: dict) -> list:
    """``location`` and ``locations`` both compare as :func:`canonical`."""
    return canonical("LOCATION", event)


LOCATION_ROW = Field("location", (LOCATION, LOCATIONS), groups=("LOCATION",),
                     to_graph=to_graph, to_ical=to_ical, canonical=canonical,
                     occurrence=(LOCATION, LOCATIONS), same=same)
