"""Values of regulator SQL shared by the server and its worker processes: the answer, the refusal, JSON.

``SqlResult`` keeps the rows as the JSON text the worker wrote (``rows_json``): the route sends those bytes
as they are, so an answer of ``SETTLE_SQL_BYTE_CAP`` bytes costs the server about that much memory, never
a Python object per value. Must not import FastAPI, the routes or the store.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class SqlRefusal:
    """A query the server will not (or could not) answer: HTTP 400 with this code and message."""

    # sql_empty | sql_syntax | sql_not_read_only | sql_access_denied | sql_timeout | sql_too_big | sql_error
    code: str
    message: str
    outcome: str  # the sql_log outcome

    @property
    def details(self) -> list[dict]:
        return [{"outcome": self.outcome}]


@dataclass
class SqlResult:
    columns: list[dict]  # [{"name": ..., "type": ...}]
    rows_json: bytes  # a JSON array of the rows, as the worker encoded it (UTF-8)
    row_count: int
    truncated: bool
    truncated_by: str | None  # "rows" | "bytes" | None
    row_cap: int
    ms: float
    snapshot_at: str
    _rows: list | None = field(default=None, repr=False)

    @property
    def rows(self) -> list[list]:
        if self._rows is None:
            self._rows = json.loads(self.rows_json)
        return self._rows

    def _meta(self) -> dict:
        return {"row_count": self.row_count, "truncated": self.truncated, "truncated_by": self.truncated_by,
                "row_cap": self.row_cap, "ms": round(self.ms, 3), "snapshot_at": self.snapshot_at}

    def to_json_dict(self) -> dict:
        return {"columns": self.columns, "rows": self.rows, **self._meta()}

    def to_json_bytes(self) -> bytes:
        """The CONTRACT answer, built around the rows' bytes without parsing them."""
        head = json.dumps({"columns": self.columns}, ensure_ascii=False)[:-1].encode()
        tail = json.dumps(self._meta(), ensure_ascii=False)[1:].encode()
        return head + b', "rows": ' + self.rows_json + b", " + tail


def jsonable(value: object) -> object:
    """A DuckDB value as JSON: exact decimals as strings (P1), instants/dates in ISO-8601."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def first_lines(exc: BaseException, limit: int = 3) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:limit])[:500]
