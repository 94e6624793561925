"""Errors raised when an iCalendar object cannot be stored in Graph without changing meaning."""

VALID_CALENDAR_OBJECT = "valid-calendar-object-resource"
SUPPORTED_COMPONENT = "supported-calendar-component"
SUPPORTED_DATA = "supported-calendar-data"


class UnsupportedObject(ValueError):
    """An iCalendar object Graph cannot hold: refused, nothing is written.

    ``construct`` names what cannot be stored (e.g. ``"RDATE"``, ``"VTODO"``), ``reason`` says
    why, and ``precondition`` is the CalDAV precondition element (RFC 4791 section 5.3.2.1) the
    refusal is reported with: ``valid-calendar-object-resource``, ``supported-calendar-component``
    or ``supported-calendar-data``. It is a ``ValueError`` so Radicale answers 4xx if it reaches
    Radicale directly.
    """

    def __init__(self, construct: str, reason: str,
                 precondition: str = VALID_CALENDAR_OBJECT) -> None:
        self.construct = construct
        self.reason = reason
        self.precondition = precondition
        super().__init__(f"cannot store {construct}: {reason}")
