"""Dataclass results as JSON for the command line's routes: the CLI rebuilds the same objects and prints
them with its own formatting, so its output through the server is the output without it.

Decimal → exact string, date/datetime → ISO 8601, tuples → lists, nested dataclasses → objects.
Must not import the routes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any


def wire(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value
