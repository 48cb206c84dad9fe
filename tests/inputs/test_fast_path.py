"""The typed fast path (issue 14): a clean plain UTF-8 CSV stores exactly what the full diagnostic path
stores; anything it cannot decide goes to the full path, which leaves no trace of the attempt."""

from __future__ import annotations

import pytest

from settlement.inputs import fast, ingest
from tests.support.ingest import BUYER2, csv_file, new_store, refund, sale

_ROWS = (
    sale("s1", "100.00", ts="2024-03-01T10:00:00"),
    sale("s2", "0.01", ts="2024-12-31T23:30:00Z", buyer=BUYER2),  # local date 2025-01-01 (P3)
    sale("s3", "999999999999.99", ts="2024-06-30 16:00+08:00"),
    refund("r1", "s1", "40.00"),
    refund("r2", "s1", "60.00", ts="2024-04-02T00:00:00.5Z"),
)

_STORED = ("SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, epoch_us(traded_at), local_date, amount, "
           "currency, kind, ref_trade_id, row_number FROM trade_rows ORDER BY row_number")


def _ingest(tmp_path, name: str, rows, *, full_path: bool, monkeypatch, **kwargs):
    con = new_store(tmp_path / name)
    taken: list[int] = []
    original = fast.insert_clean

    def spy(*args, **kw):
        rows_stored = original(*args, **kw)
        taken.append(rows_stored)
        return rows_stored

    with monkeypatch.context() as m:
        m.setattr(fast, "insert_clean", spy)
        if full_path:
            m.setattr(fast, "qualifies", lambda *_: False)
        report = ingest.ingest_file(con, csv_file(tmp_path, f"{name}.csv", *rows), uploaded_by="t", **kwargs)
    return con, report, taken


@pytest.mark.parametrize("scope", [None, "own"])
def test_clean_file_takes_the_fast_path_and_stores_what_the_full_path_stores(tmp_path, monkeypatch, scope):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    platform = None if scope is None else _ROWS[0].split(",")[1]
    fast_con, fast_report, taken = _ingest(tmp_path, "a", _ROWS, full_path=False, monkeypatch=monkeypatch,
                                           platform_scope=platform)
    full_con, full_report, _ = _ingest(tmp_path, "b", _ROWS, full_path=True, monkeypatch=monkeypatch,
                                       platform_scope=platform)
    assert taken == [5]
    assert fast_con.execute(_STORED).fetchall() == full_con.execute(_STORED).fetchall()
    assert [str(r[6]) for r in fast_con.execute(_STORED).fetchall()][:2] == ["2024-03-01", "2025-01-01"]
    keep = ("status", "rows_read", "rows_stored", "rows_duplicate", "rows_rejected", "errors", "warnings", "upload_id")
    assert {k: getattr(fast_report, k) for k in keep} == {k: getattr(full_report, k) for k in keep}
    assert fast_con.execute("SELECT platform_id, rows_stored FROM uploads").fetchall() == \
        full_con.execute("SELECT platform_id, rows_stored FROM uploads").fetchall()


@pytest.mark.parametrize("bad_row", [
    sale("s9", "1.234"),                       # never rounded: the full path refuses it
    sale(" s9"),                               # trimmed by the full path
    sale("s9", "¥9.00"),                       # normalised by the full path (not ASCII)
    sale("s1"),                                # repeats a key of the file
    refund("r9", "nope", "1.00"),              # refunds no sale
    refund("r9", "s2", "0.02"),                # over-refunds
])
def test_anything_unclean_goes_to_the_full_path_without_a_trace(tmp_path, monkeypatch, bad_row):
    rows = (*_ROWS, bad_row)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fast_con, fast_report, taken = _ingest(tmp_path, "a", rows, full_path=False, monkeypatch=monkeypatch)
    full_con, full_report, _ = _ingest(tmp_path, "b", rows, full_path=True, monkeypatch=monkeypatch)
    assert fast_report == full_report.__class__(**{**full_report.__dict__, "sha256": fast_report.sha256,
                                                   "file_name": fast_report.file_name})
    assert fast_con.execute(_STORED).fetchall() == full_con.execute(_STORED).fetchall()
    assert fast_con.execute("SELECT id, status FROM uploads").fetchall() == [(1, fast_report.status)]


def test_a_key_already_stored_goes_to_the_full_path(tmp_path, monkeypatch):
    con = new_store(tmp_path)
    first = ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("s1")), uploaded_by="t")
    report = ingest.ingest_file(con, csv_file(tmp_path, "b.csv", sale("s1"), sale("s2")), uploaded_by="t")
    assert (first.upload_id, first.status) == (1, "stored")
    assert (report.upload_id, report.status, report.rows_stored, report.rows_duplicate) == (2, "stored", 1, 1)
