"""P3: the local date of an instant never depends on the time zone of the host or the DuckDB session.

DuckDB's session time zone follows the host's TZ (ICU) unless set; a store opened on a Hangzhou server
(TZ=Asia/Shanghai) or in New York must derive exactly the same instants and local dates as one in UTC.
The session zone is set per connection here, which is what a host TZ does to a new connection.
"""

from __future__ import annotations

import datetime as dt

import pytest

from settlement.inputs import ingest
from tests.support.ingest import csv_file, new_store, sale

ZONES = ["UTC", "Asia/Shanghai", "America/New_York"]

# (file timestamp, expected local date in Asia/Shanghai, expected UTC instant)
STAMPS = [
    ("2023-05-07T15:59:59Z", dt.date(2023, 5, 7), "2023-05-07 15:59:59"),    # local 23:59:59, before the window
    ("2023-05-07T16:00:00Z", dt.date(2023, 5, 8), "2023-05-07 16:00:00"),    # local 00:00, first day of the window
    ("2026-05-08T15:59:59Z", dt.date(2026, 5, 8), "2026-05-08 15:59:59"),    # local 23:59:59, last day
    ("2024-12-31T16:30:00Z", dt.date(2025, 1, 1), "2024-12-31 16:30:00"),    # year-end: local 2025-01-01 00:30
    ("2024-12-31T23:30:00+08:00", dt.date(2024, 12, 31), "2024-12-31 15:30:00"),
    ("2024-12-31T23:30:00", dt.date(2024, 12, 31), "2024-12-31 15:30:00"),  # no offset = Asia/Shanghai (P3)
    ("2024-06-30 20:00", dt.date(2024, 6, 30), "2024-06-30 12:00:00"),
    ("2024-06-30T20:00:00-05:00", dt.date(2024, 7, 1), "2024-07-01 01:00:00"),
]


@pytest.mark.parametrize("zone", ZONES)
def test_local_dates_do_not_depend_on_the_session_time_zone(tmp_path, zone):
    con = new_store(tmp_path)
    con.execute(f"SET TimeZone = '{zone}'")
    rows = [sale(f"t{i}", ts=stamp) for i, (stamp, _d, _u) in enumerate(STAMPS)]
    report = ingest.ingest_file(con, csv_file(tmp_path, "t.csv", *rows), uploaded_by="test")
    assert report.status == "stored", report
    got = con.execute(
        "SELECT trade_id, local_date, strftime(make_timestamp(epoch_us(traded_at)), '%Y-%m-%d %H:%M:%S') "
        "FROM trades ORDER BY row_number"
    ).fetchall()
    assert got == [(f"t{i}", d, u) for i, (_s, d, u) in enumerate(STAMPS)]
