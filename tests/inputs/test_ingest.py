"""Trade ingestion (issue 2, CONTRACT "Trades"): row errors with row numbers, formats, duplicates,
all-or-nothing, accept-valid, retraction, refunds and time zones (P3, P9)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from settlement.inputs import ingest
from settlement.core.errors import UserError
from tests.support.ingest import (
    BUYER, BUYER2, HEADER, OTHER_PLATFORM, PLATFORM, SELLER, code, csv_file, errors_of, refund, sale, trades,
    write,
)


def test_valid_file_is_stored_with_counts(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "50.5"), refund("r1", "t1", "30"))
    report = ingest.ingest_file(con, path, uploaded_by="tester")
    assert (report.status, report.rows_read, report.rows_stored, report.rows_duplicate, report.rows_rejected) == (
        "stored", 3, 3, 0, 0)
    assert trades(con) == [
        ("t1", PLATFORM, "100.00", "sale", None, 1, False),
        ("t2", PLATFORM, "50.50", "sale", None, 1, False),
        ("r1", PLATFORM, "30.00", "refund", "t1", 1, False),
    ]
    row = con.execute("SELECT file_name, bytes, rows_read, rows_stored, status, uploaded_by FROM uploads").fetchall()
    assert row == [("a.csv", path.stat().st_size, 3, 3, "stored", "tester")]


ISO = "not an ISO-8601 date-time such as 2024-03-01T10:15:00 (local) or 2024-03-01T02:15:00Z"


def row(**changed: str) -> str:
    """One trade line of HEADER: a valid sale with the named fields changed."""
    fields = dict(trade_id="t1", platform_id=PLATFORM, dataset_id="DS1", seller_id=SELLER, buyer_id=BUYER,
                  traded_at="2024-03-01T10:00:00", amount="1.00", kind="sale", ref_trade_id="")
    return ",".join({**fields, **changed}.values())


@pytest.mark.parametrize(
    ("line", "error"),  # error = (column, value as reported, reason) of file row 2
    [
        (row(trade_id=""), ("trade_id", None, "missing value")),
        (row(amount=""), ("amount", None, "missing value")),
        (row(trade_id="x" * 65), ("trade_id", "x" * 65, "longer than 64 characters")),
        (row(buyer_id=BUYER[:-1] + "0"), ("buyer_id", BUYER[:-1] + "0",
         f"not a unified social credit code: check character '0' does not match (expected {BUYER[-1]!r})")),
        (row(buyer_id="12345"), ("buyer_id", "12345", "not a unified social credit code: 5 characters, 18 expected")),
        (row(buyer_id="P:alice"), ("buyer_id", "P:ALICE", "a person id (P:) cannot be an enterprise here (P4)")),
        (row(buyer_id=SELLER), ("buyer_id", SELLER, "buyer_id equals seller_id")),
        (row(traded_at="2024-02-30T10:00:00"), ("traded_at", "2024-02-30T10:00:00", ISO)),
        (row(traded_at="2024-03-01"), ("traded_at", "2024-03-01", ISO)),
        (row(amount="1.234"), ("amount", "1.234", "not a plain decimal with at most 2 decimals (digits and one '.')")),
        (row(amount='"1,00.00"'), ("amount", "1,00.00", "not a decimal amount: ',' must separate groups of three "
                                                         "digits before the '.' (as in 1,234,567.50)")),
        (row(amount="-5"), ("amount", "-5", "not a decimal amount: '-' is not allowed (only digits, one '.' and ',' "
                                            "between groups of three, as in 1,234,567.50)")),
        (row(amount="0.00"), ("amount", "0.00", "must be greater than 0")),
        (row(amount="1000000000000.00"), ("amount", "1000000000000.00", "exceeds 999999999999.99")),
        (row(kind="gift"), ("kind", "gift", "kind must be sale or refund")),
        (row(kind="refund"), ("ref_trade_id", None, "a refund must name the refunded sale")),
        (row(ref_trade_id="t0"), ("ref_trade_id", "t0", "only a refund may name a ref_trade_id")),
        (row(trade_id="r1", kind="refund", ref_trade_id="nosuch"), ("ref_trade_id", "nosuch",
         f"refunds trade_id nosuch, which is no sale of platform {PLATFORM} in the store or this file")),
    ],
)
def test_each_row_error_names_row_column_value_and_reason(con, tmp_path, line, error):
    before = trades(con)
    report = ingest.ingest_file(con, csv_file(tmp_path, "bad.csv", line), uploaded_by="t")
    assert report.status == "rejected"
    assert errors_of(report) == [(2, *error)]
    assert trades(con) == before


def test_currency_other_than_cny_is_an_error_and_cny_is_default(con, tmp_path):
    path = write(tmp_path, "c.csv", "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,currency\n"
                 f"t1,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,1.00,USD\n"
                 f"t2,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,1.00,\n")
    report = ingest.ingest_file(con, path, uploaded_by="t", accept_valid=True)
    assert errors_of(report) == [(2, "currency", "USD", "currency must be CNY")]
    assert con.execute("SELECT trade_id, currency FROM trades").fetchall() == [("t2", "CNY")]


def test_errors_on_several_rows_are_all_listed_in_row_order(con, tmp_path):
    path = csv_file(tmp_path, "m.csv", sale("t1"), sale("t2", "abc"), sale("t3"), sale("t4", "0"))
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert [(e.row_number, e.column) for e in report.errors] == [(3, "amount"), (5, "amount")]
    assert (report.rows_read, report.rows_rejected, report.errors_total, report.rows_stored) == (4, 2, 2, 0)


def test_repeat_in_file_with_different_content_rejects_every_copy(con, tmp_path):
    path = csv_file(tmp_path, "r.csv", sale("t1", "10.00"), sale("t2"), sale("t1", "11.00"))
    report = ingest.ingest_file(con, path, uploaded_by="t")
    reason = "trade_id repeats in this file with different content (rows 2, 4)"
    assert errors_of(report) == [(2, "trade_id", "t1", reason), (4, "trade_id", "t1", reason)]


def test_identical_repeat_in_file_is_a_duplicate_not_an_error(con, tmp_path):
    path = csv_file(tmp_path, "d.csv", sale("t1"), sale("t1"), sale("t2"))
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert (report.status, report.rows_stored, report.rows_duplicate, report.rows_rejected) == ("stored", 2, 1, 0)


def test_same_trade_id_on_another_platform_is_another_trade(con, tmp_path):
    path = csv_file(tmp_path, "p.csv", sale("t1"), sale("t1", platform=OTHER_PLATFORM))
    assert ingest.ingest_file(con, path, uploaded_by="t").rows_stored == 2


def test_row_identical_to_stored_trade_is_skipped_and_different_content_conflicts(con, tmp_path):
    ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1"), sale("t2")), uploaded_by="t")
    report = ingest.ingest_file(con, csv_file(tmp_path, "b.csv", sale("t1"), sale("t3")), uploaded_by="t")
    assert (report.status, report.rows_stored, report.rows_duplicate) == ("stored", 1, 1)
    report = ingest.ingest_file(
        con, csv_file(tmp_path, "c.csv", sale("t2", "99.00", ts="2024-03-02T10:00:00")), uploaded_by="t")
    assert errors_of(report) == [
        (2, "trade_id", "t2", "trade_id already stored by upload 1 with different content (traded_at, amount)")]
    assert [t[0] for t in trades(con)] == ["t1", "t2", "t3"]


def test_same_bytes_again_reports_the_earlier_upload_and_stores_nothing(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1"))
    first = ingest.ingest_file(con, path, uploaded_by="t")
    again = ingest.ingest_file(con, path, uploaded_by="t")
    assert (again.status, again.duplicate_of, again.upload_id) == ("duplicate", first.upload_id, first.upload_id)
    assert con.execute("SELECT count(*) FROM uploads").fetchall() == [(1,)]
    assert len(trades(con)) == 1


def test_all_or_nothing_leaves_trades_exactly_as_they_were(con, tmp_path):
    ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1"), sale("t2")), uploaded_by="t")
    before = con.execute("SELECT * FROM trade_rows ORDER BY trade_id").fetchall()
    report = ingest.ingest_file(con, csv_file(tmp_path, "b.csv", sale("t3"), sale("t4", "x")), uploaded_by="t")
    assert (report.status, report.rows_stored, report.rows_rejected) == ("rejected", 0, 1)
    assert con.execute("SELECT * FROM trade_rows ORDER BY trade_id").fetchall() == before
    # The rejected attempt is on record with its errors, for the operator and the regulator.
    assert con.execute("SELECT id, status, rows_read, rows_stored, rows_rejected FROM uploads WHERE id = 2"
                       ).fetchall() == [(2, "rejected", 2, 0, 1)]
    assert con.execute("SELECT upload_id, row_number, column_name, value, reason FROM rejected_rows").fetchall() == [
        (2, 3, "amount", "x", "not a decimal amount: 'x' is not allowed (only digits, one '.' and ',' between groups of three, as in 1,234,567.50)")]


def test_accept_valid_stores_valid_rows_and_keeps_bad_rows(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "x"), sale("t3"), sale("t4", buyer=SELLER))
    report = ingest.ingest_file(con, path, uploaded_by="t", accept_valid=True)
    assert (report.status, report.rows_read, report.rows_stored, report.rows_rejected) == ("partial", 4, 2, 2)
    assert [t[0] for t in trades(con)] == ["t1", "t3"]
    assert con.execute("SELECT row_number, column_name, value, reason FROM rejected_rows ORDER BY row_number"
                       ).fetchall() == [
        (3, "amount", "x", "not a decimal amount: 'x' is not allowed (only digits, one '.' and ',' between groups of three, as in 1,234,567.50)"),
        (5, "buyer_id", SELLER, "buyer_id equals seller_id"),
    ]


def test_refund_of_a_rejected_sale_is_rejected_too(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1", "x"), refund("r1", "t1", "5"))
    report = ingest.ingest_file(con, path, uploaded_by="t", accept_valid=True)
    assert errors_of(report)[-1] == (3, "ref_trade_id", "t1", "refunds the sale at row 2, which was rejected")
    assert trades(con) == []


def test_refund_pointing_into_an_earlier_upload_and_refund_totals(con, tmp_path):
    ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1", "100.00")), uploaded_by="t")
    first = ingest.ingest_file(con, csv_file(tmp_path, "b.csv", refund("r1", "t1", "60.00")), uploaded_by="t")
    assert first.status == "stored"
    # 60 stored + 30 + 20 in this file = 110 > 100: the row that crosses the sale amount is the error.
    report = ingest.ingest_file(
        con, csv_file(tmp_path, "c.csv", refund("r2", "t1", "30.00"), refund("r3", "t1", "20.00")), uploaded_by="t")
    assert errors_of(report) == [
        (3, "ref_trade_id", "t1", "refunds of sale t1 would total 110.00, more than its amount 100.00")]
    report = ingest.ingest_file(con, csv_file(tmp_path, "d.csv", refund("r2", "t1", "40.00")), uploaded_by="t")
    assert report.status == "stored"  # exactly the sale amount in total is allowed


def test_refund_must_name_a_sale_on_the_same_platform_not_a_refund(con, tmp_path):
    ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1"), refund("r1", "t1", "1")), uploaded_by="t")
    report = ingest.ingest_file(
        con, csv_file(tmp_path, "b.csv", refund("r2", "r1", "1"), refund("r3", "t1", "1", platform=OTHER_PLATFORM)),
        uploaded_by="t")
    assert errors_of(report) == [
        (2, "ref_trade_id", "r1", "refunds trade_id r1, which is a refund, not a sale"),
        (3, "ref_trade_id", "t1",
         f"refunds trade_id t1, which is no sale of platform {OTHER_PLATFORM} in the store or this file"),
    ]


def test_retract_keeps_trades_marked_and_the_same_bytes_count_as_a_new_upload(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2"))
    first = ingest.ingest_file(con, path, uploaded_by="t")
    summary = ingest.retract_upload(con, first.upload_id, by="auditor")
    assert (summary.status, summary.rows_stored) == ("retracted", 2)
    assert con.execute("SELECT retracted_by FROM uploads WHERE id = 1").fetchall() == [("auditor",)]
    assert [(t[0], t[5], t[6]) for t in trades(con)] == [("t1", 1, True), ("t2", 1, True)]
    again = ingest.ingest_file(con, path, uploaded_by="t")
    assert (again.upload_id, again.status, again.rows_stored, again.rows_duplicate) == (2, "stored", 2, 0)


def test_after_retraction_a_corrected_file_may_reuse_the_trade_ids(con, tmp_path):
    first = ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1"), sale("t2")), uploaded_by="t")
    ingest.retract_upload(con, first.upload_id, by="t")
    fixed = ingest.ingest_file(con, csv_file(tmp_path, "fixed.csv", sale("t1", "90.00")), uploaded_by="t")
    assert (fixed.status, fixed.rows_stored, fixed.errors) == ("stored", 1, ())
    assert con.execute("SELECT trade_id, amount::VARCHAR FROM trades WHERE NOT retracted").fetchall() == [
        ("t1", "90.00")]


def test_retract_refuses_unknown_twice_and_rejected(con, tmp_path):
    with pytest.raises(UserError, match="no upload with id 9"):
        ingest.retract_upload(con, 9, by="x")
    rejected = ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1", "x")), uploaded_by="t")
    with pytest.raises(UserError, match="was rejected and stored no trades"):
        ingest.retract_upload(con, rejected.upload_id, by="x")
    stored = ingest.ingest_file(con, csv_file(tmp_path, "b.csv", sale("t1")), uploaded_by="t")
    ingest.retract_upload(con, stored.upload_id, by="x")
    with pytest.raises(UserError, match="already retracted"):
        ingest.retract_upload(con, stored.upload_id, by="x")


def test_time_zones_utc_and_local_give_the_local_date_of_p3(con, tmp_path):
    path = csv_file(
        tmp_path, "tz.csv",
        sale("utc", ts="2024-12-31T16:30:00Z"),        # 00:30 on 1 Jan local
        sale("utc_before", ts="2024-12-31T15:59:59Z"),  # 23:59:59 on 31 Dec local
        sale("local", ts="2024-12-31T23:59:59"),        # no offset = local
        sale("offset", ts="2024-12-31T16:30:00+08:00"),  # explicit +08:00
        sale("space", ts="2025-01-01 00:00"),
    )
    assert ingest.ingest_file(con, path, uploaded_by="t").status == "stored"
    rows = con.execute("SELECT trade_id, traded_at AT TIME ZONE 'UTC', local_date FROM trades ORDER BY row_number"
                       ).fetchall()
    assert rows == [
        ("utc", dt.datetime(2024, 12, 31, 16, 30), dt.date(2025, 1, 1)),
        ("utc_before", dt.datetime(2024, 12, 31, 15, 59, 59), dt.date(2024, 12, 31)),
        ("local", dt.datetime(2024, 12, 31, 15, 59, 59), dt.date(2024, 12, 31)),
        ("offset", dt.datetime(2024, 12, 31, 8, 30), dt.date(2024, 12, 31)),
        ("space", dt.datetime(2024, 12, 31, 16, 0), dt.date(2025, 1, 1)),
    ]


def test_header_matching_is_case_insensitive_with_bom_and_unknown_columns_warned(con, tmp_path):
    text = ("\ufeff Trade_ID ,PLATFORM_ID,Dataset_Id,seller_id,buyer_id,traded_at,Amount,Note\n"
            f"t1,{PLATFORM.lower()},DS1, {SELLER} ,{BUYER},2024-03-01T10:00:00,12.5,hello\n")
    report = ingest.ingest_file(con, write(tmp_path, "h.csv", text), uploaded_by="t")
    assert (report.status, report.warnings) == ("stored", ("unknown column ignored: 'Note'",))
    assert con.execute("SELECT platform_id, seller_id, amount::VARCHAR FROM trades").fetchall() == [
        (PLATFORM, SELLER, "12.50")]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "file is empty (0 bytes)"),
        (HEADER.encode() + b"\n", "file has a header but no data rows"),
        (b"\x00\x01\x02garbage\xff\xfe" * 100, "binary data, not CSV text: a NUL byte in line 1"),
        ("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at\n".encode(),
         "missing required column amount; found: trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at"),
        ("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,Amount\n".encode(),
         "column 'amount' appears more than once in the header ('amount' and 'Amount')"),
        ("caf\xe9,amount\n".encode("latin-1"),  # not UTF-8, and 0xe9 0x2c is no GB18030 either
         "the file is neither UTF-8 nor GB18030 text (it looks like cp1006 (as detected)): "
         'save it from Excel as "CSV UTF-8 (Comma delimited)" and upload again'),
    ],
)
def test_file_level_errors_reject_the_file_with_a_reason(con, tmp_path, content, reason):
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert (report.status, report.file_error, report.rows_stored) == ("rejected", reason, 0)
    assert con.execute("SELECT file_error FROM uploads").fetchall() == [(reason,)]


def test_bad_utf8_in_a_data_row_rejects_the_file_naming_the_problem(con, tmp_path):
    path = tmp_path / "enc.csv"
    path.write_bytes((HEADER + "\n" + sale("t1") + "\n").encode() + sale("t\xe9", "1").encode("latin-1") + b"\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert report.status == "rejected"
    # 0xe9 0x2c (é,) is valid in no encoding we read: named, with how to save the file
    assert report.file_error.startswith("the file is neither UTF-8 nor GB18030 text (it looks like ")


def test_ragged_row_rejects_the_file(con, tmp_path):
    path = write(tmp_path, "rag.csv", HEADER + "\n" + sale("t1") + "\n" + "t2,only,three\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert report.status == "rejected" and report.file_error.startswith("cannot read the file as csv: ")


def _frame() -> pl.DataFrame:
    return pl.DataFrame({
        "Trade_ID": ["t1", "t2", "r1"], "platform_id": [PLATFORM] * 3, "dataset_id": ["DS1"] * 3,
        "seller_id": [SELLER] * 3, "buyer_id": [BUYER, BUYER2, BUYER],
        "traded_at": ["2024-12-31T16:30:00Z", "2024-03-01T10:00:00", "2024-04-01T10:00:00"],
        "amount": ["100.00", "7.5", "bad"], "kind": ["sale", "sale", "refund"], "ref_trade_id": [None, None, "t1"],
    })


@pytest.mark.parametrize("fmt", ["parquet", "jsonl", "xlsx"])
def test_other_formats_store_the_same_trades_and_report_rows(con, tmp_path, fmt):
    frame = _frame()
    path = tmp_path / f"trades.{fmt}"
    {"parquet": frame.write_parquet, "jsonl": frame.write_ndjson, "xlsx": frame.write_excel}[fmt](path)
    report = ingest.ingest_file(con, path, uploaded_by="t", accept_valid=True)
    assert report.file_format == fmt
    first_row = {"parquet": 1, "jsonl": 1, "xlsx": 2}[fmt]  # Parquet row index / JSONL line / sheet row
    assert errors_of(report) == [(first_row + 2, "amount", "bad",
                                  "not a decimal amount: 'b' is not allowed (only digits, one '.' and ',' between groups of three, as in 1,234,567.50)")]
    assert con.execute("SELECT trade_id, amount::VARCHAR, local_date FROM trades ORDER BY trade_id").fetchall() == [
        ("t1", "100.00", dt.date(2025, 1, 1)), ("t2", "7.50", dt.date(2024, 3, 1))]


def test_jsonl_numbers_keep_their_digits_and_floats_with_more_decimals_are_refused(con, tmp_path):
    lines = [
        f'{{"trade_id":"t1","platform_id":"{PLATFORM}","dataset_id":"D","seller_id":"{SELLER}",'
        f'"buyer_id":"{BUYER}","traded_at":"2024-03-01T10:00:00","amount":12.5}}',
        f'{{"trade_id":"t2","platform_id":"{PLATFORM}","dataset_id":"D","seller_id":"{SELLER}",'
        f'"buyer_id":"{BUYER}","traded_at":"2024-03-01T10:00:00","amount":0.30000000000000004}}',
    ]
    report = ingest.ingest_file(con, write(tmp_path, "n.jsonl", "\n".join(lines) + "\n"), uploaded_by="t",
                                accept_valid=True)
    assert errors_of(report) == [(2, "amount", "0.30000000000000004",
                                  "not a plain decimal with at most 2 decimals (digits and one '.')")]
    assert con.execute("SELECT amount FROM trades").fetchall() == [(Decimal("12.50"),)]


def test_corrupt_parquet_and_xlsx_are_file_errors(con, tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\x00" * 50)
    (tmp_path / "bad.xlsx").write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    for name, prefix in (("bad.parquet", "cannot read the file as parquet: "),
                         ("bad.xlsx", "cannot read the file as an .xlsx workbook: ")):
        report = ingest.ingest_file(con, tmp_path / name, uploaded_by="t")
        assert report.status == "rejected" and report.file_error.startswith(prefix), report.file_error


def test_platform_scope_rejects_rows_of_another_platform(con, tmp_path):
    path = csv_file(tmp_path, "s.csv", sale("t1"), sale("t2", platform=OTHER_PLATFORM))
    report = ingest.ingest_file(con, path, uploaded_by="op", platform_scope=PLATFORM)
    assert errors_of(report) == [(3, "platform_id", OTHER_PLATFORM,
                                  f"not the platform this operator acts for ({PLATFORM})")]


def test_report_lists_first_1000_bad_rows_and_counts_the_rest(con, tmp_path):
    rows = [sale(f"t{i}", "bad") for i in range(1200)]
    report = ingest.ingest_file(con, csv_file(tmp_path, "many.csv", *rows), uploaded_by="t")
    assert (len(report.errors), report.errors_total, report.rows_rejected) == (1000, 1200, 1200)
    assert report.errors[-1].row_number == 1001
    assert report.to_json_dict()["errors_truncated"] is True
    assert con.execute("SELECT count(*) FROM rejected_rows").fetchall() == [(1200,)]


def test_list_and_get_uploads(con, tmp_path):
    ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1")), uploaded_by="alice")
    [summary] = ingest.list_uploads(con)
    assert (summary.id, summary.file_name, summary.status, summary.rows_stored, summary.uploaded_by,
            summary.platform_ids) == (1, "a.csv", "stored", 1, "alice", (PLATFORM,))
    assert ingest.get_upload(con, 1) == summary
    with pytest.raises(UserError):
        ingest.get_upload(con, 2)


def test_codes_are_checked_once_per_distinct_value(con, tmp_path, monkeypatch):
    import settlement.core.identifiers as identifiers

    seen: list[str] = []
    original = identifiers.credit_code_problem
    monkeypatch.setattr(identifiers, "credit_code_problem", lambda c: seen.append(c) or original(c))
    rows = [sale(f"t{i}", buyer=BUYER if i % 2 else BUYER2) for i in range(50)]
    # a clean file: the fast path checks its distinct codes set-wise in SQL (identifiers.valid_credit_code_sql)
    assert ingest.ingest_file(con, csv_file(tmp_path, "a.csv", *rows), uploaded_by="t").rows_stored == 50
    assert seen == []
    assert code(3) == BUYER
    # a bad code sends the file to the full path, which words each distinct code's problem once
    bad = "91110000600037341M"
    rows = [sale(f"u{i}", buyer=bad if i == 7 else BUYER if i % 2 else BUYER2) for i in range(50)]
    ingest.ingest_file(con, csv_file(tmp_path, "b.csv", *rows), uploaded_by="t")
    assert sorted(seen) == sorted([PLATFORM, SELLER, BUYER, BUYER2, bad])
