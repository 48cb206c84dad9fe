"""Real exports (issue 10, CONTRACT "What real exports may contain"): encodings, header names, cell
normalisations counted as warnings, errors an operator can act on, bad input refused with a clear reason."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from decimal import Decimal

import pytest

from settlement.inputs import ingest, registry
from tests.support.ingest import BUYER, BUYER2, HEADER, PLATFORM, SELLER, csv_file, errors_of, new_store, refund, sale, write

ZH_HEADER = "交易编号,平台,数据集,卖方,买方,交易时间,金额,币种,类型,原交易编号"
GB_WARNING = "file encoding: GB18030 (read as such; save as 'CSV UTF-8' to avoid this)"
NAMED = ("not a decimal amount: '{c}' is not allowed (only digits, one '.' and ',' between groups of three, "
         "as in 1,234,567.50)")
GROUPING = "not a decimal amount: ',' must separate groups of three digits before the '.' (as in 1,234,567.50)"


def stored(con) -> list[tuple]:
    return con.execute("SELECT trade_id, platform_id, seller_id, buyer_id, traded_at, local_date, amount, kind "
                       "FROM trades ORDER BY trade_id").fetchall()


def test_gb18030_csv_with_chinese_header_is_read_and_the_encoding_reported(con, tmp_path):
    path = tmp_path / "gb.csv"
    path.write_bytes((ZH_HEADER + "\r\n" + f"T1,{PLATFORM},DS1,{SELLER},{BUYER},2024-03-01T10:00:00,12.50,CNY,sale,\r\n"
                      ).encode("gb18030"))
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert (report.status, report.rows_stored, report.warnings) == ("stored", 1, (GB_WARNING,))
    assert [p.name for p in tmp_path.iterdir() if "utf8" in p.name] == []  # the transcoded copy is removed


def test_gbk_registry_loads_with_chinese_names_and_the_encoding_warned(con, tmp_path):
    path = tmp_path / "datasets.csv"
    path.write_bytes(("数据集编号,所有方,名称,认定日期,认定截止日期\n"
                      f"DS1,{SELLER},交通流量数据,2023-06-01,\n,,,,\n").encode("gbk"))
    report = registry.load_registry(con, "datasets", path, loaded_by="t")
    assert (report.status, report.rows_loaded, report.warnings) == (
        "loaded", 1, (GB_WARNING, "1 row with every cell empty was skipped"))
    assert con.execute("SELECT dataset_id, name FROM datasets").fetchall() == [("DS1", "交通流量数据")]


def test_a_registry_in_no_known_encoding_is_refused_naming_it_not_0_of_0_rows(con, tmp_path):
    from settlement.cli.ingest_cmds import format_load_report

    path = tmp_path / "platforms.csv"
    path.write_bytes(b"\xff\xfep\x00l\x00a\x00t\x00f\x00o\x00r\x00m\x00_\x00i\x00d\x00\n\x00")
    report = registry.load_registry(con, "platforms", path, loaded_by="t")
    reason = ("the file is neither UTF-8 nor GB18030 text (it looks like UTF-16 (Excel's \"Unicode Text\")): "
              'save it from Excel as "CSV UTF-8 (Comma delimited)" and upload again')
    assert (report.status, report.file_error) == ("rejected", reason)
    assert format_load_report(report) == f"platforms: platforms.csv rejected, nothing loaded: {reason}"


@pytest.mark.parametrize("header", [
    "Trade ID,Platform-ID,dataset id,SELLER_ID, buyer_id ,Traded At,AMOUNT,kind,ref_trade_id",
    "ＴＲＡＤＥ＿ＩＤ,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,kind,ref_trade_id",
    "交易编号,平台,数据集,卖方,买方,交易时间,金额,类型,原交易编号",
])
def test_header_names_match_after_nfkc_case_and_separators_and_in_chinese(con, tmp_path, header):
    path = write(tmp_path, "h.csv", header + "\n" + sale("t1") + "\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert (report.status, report.rows_stored) == ("stored", 1)


def test_missing_column_lists_the_columns_found_and_the_closest(con, tmp_path):
    path = write(tmp_path, "m.csv", HEADER.replace("trade_id", "Trade No", 1) + "\n" + sale("t1") + "\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert report.file_error == (
        "missing required column trade_id; found: Trade No, platform_id, dataset_id, seller_id, buyer_id, "
        "traded_at, amount, kind, ref_trade_id; closest: 'Trade No'")


def test_export_forms_store_the_same_trades_as_the_plain_file_and_each_is_warned(con, tmp_path):
    plain = csv_file(tmp_path, "plain.csv", sale("t1", "1234567.50", ts="2024-03-01T10:00:00"),
                     sale("t2", "88", ts="2024-03-01T14:05:09"))
    assert ingest.ingest_file(con, plain, uploaded_by="t").status == "stored"
    expected = stored(con)
    con.execute("UPDATE uploads SET status = 'retracted', retracted_at = now()")
    excel = write(tmp_path, "excel.csv", "\n".join([
        HEADER,
        f"ｔ１,{PLATFORM},DS1,{SELLER},{BUYER},2024/3/1 10:00,\"¥1,234,567.50\",sale,",
        f"t2,{PLATFORM},DS1,{SELLER},{BUYER},２０２４-３-１ １４：０５：０９,CNY 88,sale,",
        ",,,,,,,,",
    ]) + "\n")
    report = ingest.ingest_file(con, excel, uploaded_by="t")
    assert (report.status, report.rows_read, report.rows_stored) == ("stored", 2, 2)
    assert report.warnings == (
        "2 cells had full-width or compatibility characters, read after Unicode NFKC (e.g. '１２３' as '123')",
        "2 amounts had a currency sign (¥, CNY) or thousands separators, read as plain decimals "
        "(e.g. '¥1,234.50' as 1234.50)",
        "2 date-times were written as YYYY/M/D H:MM, read as local time (P3)",
        "1 row with every cell empty was skipped",
    )
    assert con.execute("SELECT trade_id, platform_id, seller_id, buyer_id, traded_at, local_date, amount, kind "
                       "FROM trades WHERE upload_id = 2 ORDER BY trade_id").fetchall() == expected


def test_empty_rows_are_skipped_and_later_rows_keep_their_file_row_numbers(con, tmp_path):
    path = write(tmp_path, "e.csv", "\n".join([HEADER, ",,,,,,,,", sale("t1"), " , ,,,,,,,", sale("t2", "x")]) + "\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert (report.rows_read, report.rows_rejected) == (2, 1)
    assert errors_of(report) == [(5, "amount", "x", NAMED.format(c="x"))]
    assert report.warnings == ("2 rows with every cell empty were skipped",)


@pytest.mark.parametrize(("amount", "reason"), [
    ("1,23.5", GROUPING),
    ("1.234,50", GROUPING),
    ("12,34", GROUPING),
    ("¥1,23", GROUPING),
    ("1 234.50", NAMED.format(c=" ")),
    ("$12.00", NAMED.format(c="$")),
    ("12.5元", NAMED.format(c="元")),
])
def test_a_bad_amount_names_the_offending_character(con, tmp_path, amount, reason):
    report = ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1", f'"{amount}"')), uploaded_by="t")
    assert errors_of(report) == [(2, "amount", amount, reason)]


def test_a_credit_code_in_scientific_notation_says_excel_made_it_a_number(con, tmp_path):
    row = f"t1,{PLATFORM},DS1,{SELLER},9.13301E+17,2024-03-01T10:00:00,5,sale,"
    report = ingest.ingest_file(con, csv_file(tmp_path, "s.csv", row), uploaded_by="t")
    assert errors_of(report) == [(2, "buyer_id", "9.13301E+17",
                                  "Excel stored this code as a number: format the column as Text and export again")]


def test_the_text_report_groups_identical_errors_then_lists_them_all(con, tmp_path):
    from settlement.cli.ingest_cmds import format_upload_report

    rows = [sale(f"t{i}", "x") for i in range(7)] + [sale("u", ts="2024-13-01T00:00:00")]
    report = ingest.ingest_file(con, csv_file(tmp_path, "g.csv", *rows), uploaded_by="t")
    text = format_upload_report(report).splitlines()
    assert text[3:7] == [
        "  errors by kind:",
        f"    amount: {NAMED.format(c='x')}: 7 rows (rows 2, 3, 4, 5, 6, ...)",
        "    traded_at: not an ISO-8601 date-time such as 2024-03-01T10:15:00 (local) or 2024-03-01T02:15:00Z:"
        " 1 row (row 9)",
        "  every error:",
    ]
    assert len(text) == 7 + 8
    assert len(report.to_json_dict()["errors"]) == 8  # JSON keeps every row


def test_xlsx_date_cells_are_local_date_times(con, tmp_path):
    import xlsxwriter

    path = tmp_path / "d.xlsx"
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, HEADER.split(","))
    sheet.write_row(1, 0, ["t1", PLATFORM, "DS1", SELLER, BUYER])
    sheet.write_datetime(1, 5, dt.datetime(2024, 12, 31, 23, 30), book.add_format({"num_format": "yyyy/m/d h:mm"}))
    sheet.write_number(1, 6, 1234.5)
    sheet.write_string(1, 7, "sale")
    book.close()
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert report.status == "stored"
    assert con.execute("SELECT local_date, amount FROM trades").fetchall() == [
        (dt.date(2024, 12, 31), Decimal("1234.50"))]


# --- bad input: a clear error, nothing changed -------------------------------------------------------------

def _rejected(con, report, reason):
    assert (report.status, report.file_error, report.rows_stored) == ("rejected", reason, 0)
    assert con.execute("SELECT count(*) FROM trade_rows").fetchall() == [(0,)]


def test_binary_junk_is_refused(con, tmp_path):
    path = tmp_path / "junk.csv"
    path.write_bytes(bytes(range(256)) * 50)
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"), "binary data, not CSV text: a NUL byte in line 1")


def test_a_nul_byte_anywhere_is_refused_with_its_line(con, tmp_path):
    path = tmp_path / "nul.csv"
    body = "\n".join([HEADER] + [sale(f"t{i}") for i in range(5000)]) + "\n"
    path.write_bytes(body.encode() + sale("z\x00").encode() + b"\n")
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"),
              "binary data, not CSV text: a NUL byte in line 5002")


def test_a_zip_bomb_disguised_as_xlsx_is_refused_before_inflating(con, tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (64 * 2**20))
    report = ingest.ingest_file(con, path, uploaded_by="t")
    packed = path.stat().st_size  # the limit follows the file's real size, not the sizes its headers declare
    _rejected(con, report, f"cannot read the file as an .xlsx workbook: bomb.xlsx inflates to more than "
                           f"{200 * packed + 10 * 2**20:,} bytes, the limit for a {packed:,}-byte workbook (at most "
                           f"1,073,741,824 bytes and 200x the file size): a zip bomb?")


def test_too_many_zip_entries_are_refused(con, tmp_path):
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(10_001):
            archive.writestr(f"x/{i}", b"")
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"),
              "cannot read the file as an .xlsx workbook: many.xlsx has 10,001 zip entries, more than the limit of "
              "10,000 (not a spreadsheet export)")


def test_a_50_mb_single_line_is_refused(con, tmp_path):
    path = tmp_path / "long.csv"
    path.write_bytes((HEADER + "\n" + sale("t1") + "\n").encode() + b"x" * (50 * 2**20) + b"\n")
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"),
              "line 3 is longer than 2,000,000 bytes: a damaged or binary file, not a CSV export "
              "(re-export it from the spreadsheet)")


def test_a_50_mb_header_line_is_refused(con, tmp_path):
    path = tmp_path / "longh.csv"
    path.write_bytes(b"a" * (50 * 2**20))
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"),
              "row 1 (header) is longer than 2,000,000 bytes: not a CSV export")


def test_a_thousand_columns_are_refused(con, tmp_path):
    path = write(tmp_path, "wide.csv", HEADER + "," + ",".join(f"x{i}" for i in range(991)) + "\n")
    _rejected(con, ingest.ingest_file(con, path, uploaded_by="t"),
              "row 1 (header) has 1000 columns, more than 256: not a file of this kind (check that the right "
              "sheet or file was exported)")


def test_nested_json_values_are_row_errors_naming_the_character(con, tmp_path):
    line = {"trade_id": "t1", "platform_id": PLATFORM, "dataset_id": "DS1", "seller_id": SELLER,
            "buyer_id": BUYER2, "traded_at": "2024-03-01T10:00:00", "amount": {"value": 5}}
    path = write(tmp_path, "n.jsonl", json.dumps(line) + "\n")
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert errors_of(report) == [(1, "amount", '{"value":5}', NAMED.format(c="{"))]
    assert con.execute("SELECT count(*) FROM trade_rows").fetchall() == [(0,)]


def test_a_second_cursor_of_the_same_store_reads_exports_too(tmp_path):
    # The server gives every request its own cursor: the NFKC macro is per connection, the function is not.
    from settlement.inputs import ingest as ingest_mod
    from tests.support.ingest import csv_file, sale

    con = new_store(tmp_path)
    first, second = con.cursor(), con.cursor()
    try:
        one = ingest_mod.ingest_file(first, csv_file(tmp_path, "a.csv", sale("t1", "１００.00")), uploaded_by="t")
        two = ingest_mod.ingest_file(second, csv_file(tmp_path, "b.csv", sale("t2", "２００.00")), uploaded_by="t")
        assert (one.status, two.status) == ("stored", "stored")
        assert con.execute("SELECT trade_id, amount::VARCHAR FROM trades ORDER BY trade_id").fetchall() == [
            ("t1", "100.00"), ("t2", "200.00")]
    finally:
        first.close()
        second.close()


def test_mixed_line_ends_name_the_cause_not_duckdbs_parser_state(con, tmp_path):
    """Rows appended with LF under Excel's CR LF header: DuckDB takes CR LF as every row's end and stops with
    "state machine reached an invalid state"; the report says what is wrong with the file instead."""
    rows = [sale(f"t{i}") for i in range(3000)] + [refund("r1", "t1", "1.00")]  # a last cell that is not empty
    path = tmp_path / "mixed.csv"
    path.write_bytes((HEADER + "\r\n" + "\n".join(rows) + "\n").encode())
    report = ingest.ingest_file(con, path, uploaded_by="t")
    assert report.status == "rejected" and report.rows_stored == 0
    assert report.file_error == ("the file mixes line ends: 1 lines end in CR LF (as Excel writes) and 3,001 in a "
                                 "bare LF (rows appended by another tool?): open it in Excel and save it again as "
                                 "'CSV UTF-8'")
    crlf = tmp_path / "crlf.csv"  # the same rows with Excel's CR LF throughout are stored
    crlf.write_bytes((HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode())
    assert ingest.ingest_file(con, crlf, uploaded_by="t").rows_stored == 3001
