"""Translation: pure functions between iCalendar (RFC 5545) and Microsoft Graph event JSON.

No I/O here. The storage plugin calls :func:`ical_to_graph.event_plan` to turn a CalDAV
resource into Graph request bodies (and :func:`ical_to_graph.check_against` before writing),
and :func:`graph_to_ical.to_resource` to turn Graph events back into the text a CalDAV client
reads. docs/mapping.md lists the mapping.
"""

from .errors import UnsupportedObject
from .graph_to_ical import Resource, to_resource
from .ical_to_graph import EventPlan, check_against, event_plan

__all__ = ["EventPlan", "Resource", "UnsupportedObject", "check_against", "event_plan",
           "to_resource"]
