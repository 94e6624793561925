"""Runner for Radicale's own HTTP-level tests (``TestBaseRequests``) against the Graph storage
plugin on the Graph emulator. Usage and results: docs/radicale-tests.md."""
