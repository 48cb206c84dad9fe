"""`settle ingest FILE --errors-out PATH` (issue 10 item 4): the rejected rows in the operator's own columns
plus error_column and error_reason, as CSV (UTF-8 with BOM) or xlsx (every cell a string, never a formula)."""

from __future__ import annotations

import csv

import polars as pl
from typer.testing import CliRunner

from settlement.cli import app
from tests.support.ingest import BUYER, PLATFORM, SELLER, write

runner = CliRunner()
HEADER = "Trade ID,note,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount"
NAMED_X = ("not a decimal amount: 'x' is not allowed (only digits, one '.' and ',' between groups of three, "
           "as in 1,234,567.50)")


def _file(tmp_path):
    return write(tmp_path, "ops.csv", "\n".join([
        HEADER,
        f"t1,ok,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,5",
        f"t2,=1+1,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,x",
        f"t3,both,{PLATFORM},DS1,{SELLER},{SELLER},2024-13-01T10:00:00,6",
    ]) + "\n")


def _ingest(tmp_path, out):
    db = tmp_path / "e.duckdb"
    assert runner.invoke(app, ["init", "--db", str(db)]).exit_code == 0
    return runner.invoke(app, ["ingest", str(_file(tmp_path)), "--db", str(db), "--errors-out", str(out)])


def test_errors_out_csv_has_the_original_columns_and_the_reasons(tmp_path):
    out = tmp_path / "rejected.csv"
    result = _ingest(tmp_path, out)
    assert result.exit_code == 2
    assert f"  2 rejected rows written to {out} (fix them there and upload that file)" in result.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # Excel's "CSV UTF-8"
    with out.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        HEADER.split(",") + ["error_column", "error_reason"],
        # a cell Excel would run as a formula is made inert with a leading apostrophe (issue 15 item 5)
        ["t2", "'=1+1", PLATFORM, "DS1", SELLER, BUYER, "2024-03-01T10:00:00", "x", "amount", NAMED_X],
        ["t3", "both", PLATFORM, "DS1", SELLER, SELLER, "2024-13-01T10:00:00", "6", "buyer_id; traded_at",
         "buyer_id equals seller_id; not an ISO-8601 date-time such as 2024-03-01T10:15:00 (local) or "
         "2024-03-01T02:15:00Z"],
    ]


def test_errors_out_xlsx_writes_every_cell_as_a_string_never_a_formula(tmp_path):
    out = tmp_path / "rejected.xlsx"
    assert _ingest(tmp_path, out).exit_code == 2
    frame = pl.read_excel(out, infer_schema_length=0)
    assert frame.columns == HEADER.split(",") + ["error_column", "error_reason"]
    assert frame["note"].to_list() == ["=1+1", "both"]  # the text, not a formula's result
    assert frame["amount"].to_list() == ["x", "6"]
    import zipfile
    sheet = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet


def test_no_rejected_rows_writes_nothing(tmp_path):
    db = tmp_path / "e.duckdb"
    runner.invoke(app, ["init", "--db", str(db)])
    good = write(tmp_path, "g.csv", HEADER + f"\nt1,ok,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,5\n")
    out = tmp_path / "none.csv"
    result = runner.invoke(app, ["ingest", str(good), "--db", str(db), "--errors-out", str(out)])
    assert result.exit_code == 0 and f"  no rejected rows: {out} not written" in result.output
    assert not out.exists()
