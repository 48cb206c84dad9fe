"""Refusals of a request a user made by name (an unknown upload id, retracting twice ...).

Data errors in files are never exceptions: they are values in reports (see ``ingest``). A ``UserError``
is for a request that cannot be carried out at all; the edges turn it into exit code 1 or an HTTP 4xx.
"""

from __future__ import annotations


class UserError(Exception):
    """A request refused with a reason the user can act on. ``code`` is not_found | conflict | invalid | forbidden."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
