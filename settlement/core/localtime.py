"""Local time (P3): Asia/Shanghai is UTC+08:00 all year (no daylight saving since 1991).

Owns the one SQL expression that turns an instant into its local date. It works on epoch microseconds, so it
never reads DuckDB's session time zone (which follows the host's TZ): the same instant has the same local
date on a server in Hangzhou, in UTC or in New York. Imports nothing of ours.
"""

from __future__ import annotations

import datetime as dt

LOCAL_OFFSET = dt.timedelta(hours=8)
LOCAL_ZONE = dt.timezone(LOCAL_OFFSET, "Asia/Shanghai")
_OFFSET_US = 8 * 3600 * 1_000_000


def local_date_sql(instant: str) -> str:
    """SQL: the Asia/Shanghai date of the TIMESTAMPTZ expression ``instant``, independent of the session zone."""
    return f"CAST(make_timestamp(epoch_us({instant}) + {_OFFSET_US}) AS DATE)"


def local_date(instant: dt.datetime) -> dt.date:
    """Python twin of ``local_date_sql`` for an aware datetime."""
    if instant.tzinfo is None:
        raise ValueError("an instant must be timezone-aware")
    return instant.astimezone(LOCAL_ZONE).date()
