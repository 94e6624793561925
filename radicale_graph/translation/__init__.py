"""Translation: pure functions between iCalendar (RFC 5545) and Microsoft Graph event JSON.

No I/O here. The storage plugin calls :func:`ical_to_graph.event_plan` to turn a CalDAV
resource into Graph request bodies, and :func:`graph_to_ical.resource_text` to turn Graph
events back into the text a CalDAV client reads.
"""

from .errors import UnsupportedObject
from .graph_to_ical import Resource, to_resource
from .ical_to_graph import EventPlan, event_plan

__all__ = ["EventPlan", "Resource", "UnsupportedObject", "event_plan", "to_resource"]
