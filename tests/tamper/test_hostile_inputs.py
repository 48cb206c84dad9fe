"""Issue 15 items 4 and 5, reproduced and refused: a JSON number is read as the text written (DuckDB's own
JSON reader parses every number through a double, even for a VARCHAR column: settlement/inputs/jsonl.py),
and ids a spreadsheet would run as a formula are refused at load, on the fast and the full path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from settlement.core import store
from settlement.inputs.ingest import ingest_file
from settlement.tools.credit_codes import credit_code

ROW = ('{{"trade_id":"{t}","platform_id":"{p}","dataset_id":"{d}","seller_id":"{s}","buyer_id":"{b}",'
       '"traded_at":"2024-03-01T10:00:00","amount":{a}}}')


def _ingest(tmp_path: Path, rows: list[dict]):
    store.init(tmp_path / "s.duckdb")
    con = store.open_store(tmp_path / "s.duckdb")
    f = tmp_path / "t.jsonl"
    f.write_text("".join(ROW.format(p=credit_code(1), s=credit_code(2), b=credit_code(3), **r) + "\n" for r in rows),
                 encoding="utf-8")
    return con, ingest_file(con, f, uploaded_by="test", accept_valid=True)


def test_json_float_beyond_two_decimals_is_refused(tmp_path) -> None:
    con, report = _ingest(tmp_path, [dict(t="t1", d="D1", a="99.999999999999999")])
    assert report.rows_stored == 0 and report.errors[0].column == "amount"


@pytest.mark.parametrize("column,row", [
    ("trade_id", dict(t="=HYPERLINK(1)", d="D1", a='"1.00"')),
    ("dataset_id", dict(t="t1", d="@SUM(A1)", a='"1.00"')),
    ("dataset_id", dict(t="t1", d="+1", a='"1.00"')),
    ("trade_id", dict(t="-1", d="D1", a='"1.00"')),
])
def test_formula_ids_are_refused(tmp_path, column, row) -> None:
    con, report = _ingest(tmp_path, [row])
    assert report.rows_stored == 0
    assert report.errors[0].column == column and "formula" in report.errors[0].reason


def _errors(report) -> list[tuple]:
    return [(e.row_number, e.column, e.value, e.reason) for e in report.errors]


NOT_PLAIN = "not a plain decimal with at most 2 decimals (digits and one '.')"


def test_json_numbers_reach_the_checks_as_written(tmp_path) -> None:
    # Each number as the characters written: 5 and 12.5 and 1.50 are amounts; 99.999999999999999 (a double
    # would make it 100.0) and 0.125 have too many decimals; 1e3 is no plain decimal, as in a CSV cell.
    con, report = _ingest(tmp_path, [dict(t="t1", d="D1", a="5"), dict(t="t2", d="D1", a="12.5"),
                                     dict(t="t3", d="D1", a="1.50"), dict(t="t4", d="D1", a="99.999999999999999"),
                                     dict(t="t5", d="D1", a="0.125"), dict(t="t6", d="D1", a="1e3"),
                                     dict(t="t7", d="D1", a='"7.25"'), dict(t="t8", d="D1", a="-0.0")])
    assert _errors(report) == [
        (4, "amount", "99.999999999999999", NOT_PLAIN),
        (5, "amount", "0.125", NOT_PLAIN),
        (6, "amount", "1e3", "not a decimal amount: 'e' is not allowed (only digits, one '.' and ',' between "
                             "groups of three, as in 1,234,567.50)"),
        (8, "amount", "-0.0", "not a decimal amount: '-' is not allowed (only digits, one '.' and ',' between "
                              "groups of three, as in 1,234,567.50)"),
    ]
    assert con.execute("SELECT trade_id, amount::VARCHAR FROM trades ORDER BY row_number").fetchall() == [
        ("t1", "5.00"), ("t2", "12.50"), ("t3", "1.50"), ("t7", "7.25")]


def test_json_numbers_inside_strings_keys_and_nested_values_are_left_alone(tmp_path) -> None:
    # Digits inside strings (escaped quotes and backslashes included) are not number tokens; a numeric id
    # is its digits; a nested object is shown as DuckDB writes it (an error for an amount).
    store.init(tmp_path / "s.duckdb")
    con = store.open_store(tmp_path / "s.duckdb")
    lines = [
        {"交易编号": 12345678901234567890, "platform_id": credit_code(1), "dataset_id": 'x: 5, "y\\" 7',
         "seller_id": credit_code(2), "buyer_id": credit_code(3), "traded_at": "2024-03-01T10:00:00",
         "Amount": 10.01},
        {"交易编号": "t2", "platform_id": credit_code(1), "dataset_id": "D1", "seller_id": credit_code(2),
         "buyer_id": credit_code(3), "traded_at": "2024-03-01T10:00:00", "Amount": {"value": 5.5, "d": [1, 2]}},
    ]
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    report = ingest_file(con, f, uploaded_by="test", accept_valid=True)
    assert _errors(report) == [(2, "amount", '{"value":5.5,"d":[1,2]}',
                                "not a decimal amount: '{' is not allowed (only digits, one '.' and ',' between "
                                "groups of three, as in 1,234,567.50)")]
    assert con.execute("SELECT trade_id, dataset_id, amount::VARCHAR FROM trades").fetchall() == [
        ("12345678901234567890", 'x: 5, "y\\" 7', "10.01")]


def _formula_reason(column: str, first: str) -> str:
    return (f"{column} starts with {first}: spreadsheets would run it as a formula when an export is opened; "
            "ids may not start with =, +, -, @, a tab or a carriage return")


def test_formula_ids_are_refused_on_the_fast_path_of_a_clean_csv(tmp_path) -> None:
    # A pure-ASCII CSV takes the typed fast path (fast.py): a formula id sends it to the full path, which
    # words the error; negative amounts and '-', '=' inside ids are not formula ids.
    store.init(tmp_path / "s.duckdb")
    con = store.open_store(tmp_path / "s.duckdb")
    p, s, b = credit_code(1), credit_code(2), credit_code(3)
    head = "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,kind,ref_trade_id\n"
    rows = [f"t1,{p},DS-1,{s},{b},2024-03-01T10:00:00,10.00,sale,",
            f"t2,{p},=cmd|' /C calc'!A0,{s},{b},2024-03-01T10:00:00,10.00,sale,",
            f"a=b,{p},D1,{s},{b},2024-03-01T10:00:00,-5.00,sale,",
            f"r1,{p},D1,{s},{b},2024-03-02T10:00:00,1.00,refund,-t1",
            f"\"\tt5\",{p},D1,{s},{b},2024-03-01T10:00:00,1.00,sale,"]
    f = tmp_path / "t.csv"
    f.write_text(head + "\n".join(rows) + "\n", encoding="ascii")
    report = ingest_file(con, f, uploaded_by="test", accept_valid=True)
    assert _errors(report) == [
        (3, "dataset_id", "=cmd|' /C calc'!A0", _formula_reason("dataset_id", "'='")),
        (4, "amount", "-5.00", "not a decimal amount: '-' is not allowed (only digits, one '.' and ',' between "
                               "groups of three, as in 1,234,567.50)"),
        (5, "ref_trade_id", "-t1", _formula_reason("ref_trade_id", "'-'")),
        (6, "trade_id", "\tt5", _formula_reason("trade_id", "a tab")),
    ]
    assert con.execute("SELECT trade_id, dataset_id FROM trades").fetchall() == [("t1", "DS-1")]


def test_formula_ids_are_found_after_nfkc_and_trimming(tmp_path) -> None:
    # A full-width ＝ is '=' after NFKC, and spaces before '@' are trimmed: both are formula ids.
    con, report = _ingest(tmp_path, [dict(t="t1", d="＝1+2", a='"1.00"'), dict(t="  @x", d="D1", a='"1.00"'),
                                     dict(t="t3", d="D1 -2", a='"1.00"')])
    assert _errors(report) == [(1, "dataset_id", "＝1+2", _formula_reason("dataset_id", "'='")),
                               (2, "trade_id", "  @x", _formula_reason("trade_id", "'@'"))]
    assert con.execute("SELECT trade_id, dataset_id FROM trades").fetchall() == [("t3", "D1 -2")]


def test_a_clean_csv_whose_only_fault_is_a_formula_id_stores_nothing(tmp_path) -> None:
    # Without the check in fast.py's insert this file would be stored as it is (every other cell is clean).
    store.init(tmp_path / "s.duckdb")
    con = store.open_store(tmp_path / "s.duckdb")
    f = tmp_path / "t.csv"
    f.write_text("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n"
                 f"+t1,{credit_code(1)},D1,{credit_code(2)},{credit_code(3)},2024-03-01T10:00:00,10.00\n",
                 encoding="ascii")
    report = ingest_file(con, f, uploaded_by="test")
    assert (report.status, report.rows_stored) == ("rejected", 0)
    assert _errors(report) == [(2, "trade_id", "+t1", _formula_reason("trade_id", "'+'"))]
    assert con.execute("SELECT count(*) FROM trade_rows").fetchall() == [(0,)]
