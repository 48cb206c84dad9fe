"""sample_trades/ (issue 2 item 7): the files parse, every code is valid, refunds are sound, and they all load.

The expected payouts of sample_trades/README.md are checked by the settlement tests; here we check that
the folder is what the README says it is.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
from stdnum.cn import uscc

SAMPLE = Path(__file__).resolve().parents[2] / "sample_trades"
REGISTRIES = {
    "platforms": ("platforms.csv", ["platform_id", "name", "certified_on", "certified_until"]),
    "datasets": ("datasets.csv", ["dataset_id", "owner_id", "name", "certified_on", "certified_until", "owner_from"]),
    "affiliations": ("affiliations.csv", ["a_id", "b_id", "relation", "share", "valid_from", "valid_to", "exempt"]),
    "prior_awards": ("prior_awards.csv", ["dataset_id", "year", "amount", "source"]),
}
TRADE_FILES = sorted(p.name for p in SAMPLE.glob("trades_*"))
TRADE_REQUIRED = ["trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "amount"]
SHANGHAI = timezone(timedelta(hours=8))


# The Excel exports (issue 10): Chinese column names, GB18030, ¥ and thousands separators, full-width digits,
# YYYY/M/D times, empty trailing rows, xlsx date cells. Read here into the plain contract form, independently
# of the engine's reader, so the checks below see every trade file alike.
ZH_COLUMNS = {"交易编号": "trade_id", "平台": "platform_id", "数据集": "dataset_id", "卖方": "seller_id",
              "买方": "buyer_id", "交易时间": "traded_at", "金额": "amount", "币种": "currency", "类型": "kind",
              "原交易编号": "ref_trade_id"}


def _plain(row: dict) -> dict[str, str]:
    out = {}
    for key, value in row.items():
        key = ZH_COLUMNS.get(key, key)
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%dT%H:%M:%S")
        value = unicodedata.normalize("NFKC", "" if value is None else str(value))
        if key == "amount":
            value = re.sub(r"^(¥|CNY)", "", value).replace(",", "")
        if key == "traded_at" and (m := re.fullmatch(r"(\d{4})/(\d{1,2})/(\d{1,2}) (\d{1,2}):(\d{2})", value)):
            y, mo, d, h, mi = map(int, m.groups())
            value = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00"
        out[key] = value
    return out


def read_rows(name: str) -> list[dict[str, str]]:
    path = SAMPLE / name
    if name.endswith(".jsonl"):
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    if name.endswith(".xlsx"):
        return [_plain(r) for r in pl.read_excel(path).iter_rows(named=True)]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")  # Chinese Excel's "CSV"
    rows = csv.DictReader(io.StringIO(text, newline=""))
    return [_plain(r) for r in rows if any((v or "").strip() for v in r.values())]


def all_trades() -> list[dict[str, str]]:
    return [dict(row, _file=name) for name in TRADE_FILES for row in read_rows(name)]


def local_date(text: str) -> date:
    """P3: no offset = Asia/Shanghai; 'Z' = UTC."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=SHANGHAI)
    return stamp.astimezone(SHANGHAI).date()


def test_the_folder_has_the_registries_and_several_trade_files():
    assert TRADE_FILES == [
        "trades_binjiang_2024.jsonl",
        "trades_excel_dates_2025.xlsx",
        "trades_excel_gb18030_2025.csv",
        "trades_qiantang_2024_2025.csv",
        "trades_xihu_2023_2024.csv",
        "trades_xihu_2025_2026.csv",
    ]
    for name, header in REGISTRIES.values():
        with open(SAMPLE / name, newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == header, name


def test_every_file_parses_and_trade_rows_are_well_formed():
    for name in TRADE_FILES:
        rows = read_rows(name)
        assert rows, name
        for row in rows:
            for column in TRADE_REQUIRED:
                assert row[column].strip(), (name, row, column)
            amount = Decimal(row["amount"])
            assert amount > 0 and amount == amount.quantize(Decimal("0.01")), row
            assert row.get("kind", "sale") in ("sale", "refund")
            assert row.get("currency", "CNY") == "CNY"
            assert row["buyer_id"] != row["seller_id"]
    ids = Counter((r["platform_id"], r["trade_id"]) for r in all_trades())
    assert [k for k, n in ids.items() if n > 1] == []  # trade_id unique per platform


def test_every_credit_code_is_valid_per_stdnum():
    codes: set[str] = set()
    for t in all_trades():
        codes |= {t["platform_id"], t["seller_id"], t["buyer_id"]}
    codes |= {r["platform_id"] for r in read_rows("platforms.csv")}
    codes |= {r["owner_id"] for r in read_rows("datasets.csv")}
    for r in read_rows("affiliations.csv"):
        codes |= {x for x in (r["a_id"], r["b_id"]) if not x.startswith("P:")}
    assert len(codes) == 3 + 13 + 33 + 2  # platforms, owners (O13 from 2024-06-01), buyers, M and H
    assert sorted(c for c in codes if not uscc.is_valid(c)) == []


def test_realistic_size_three_platforms_a_dozen_owners_30_plus_buyers():
    trades = all_trades()
    assert len({t["platform_id"] for t in trades}) == 3
    assert len({r["owner_id"] for r in read_rows("datasets.csv")}) == 13
    assert len({t["buyer_id"] for t in trades}) >= 30


def test_every_refund_references_a_sale_on_the_same_platform_and_never_exceeds_it():
    trades = all_trades()
    sales = {(t["platform_id"], t["trade_id"]): t for t in trades if t.get("kind", "sale") == "sale"}
    refunded: Counter = Counter()
    refunds = [t for t in trades if t.get("kind") == "refund"]
    assert len(refunds) == 3  # partial, full, next-year
    for r in refunds:
        sale = sales[(r["platform_id"], r["ref_trade_id"])]  # KeyError = dangling refund (P9)
        assert (sale["dataset_id"], sale["buyer_id"]) == (r["dataset_id"], r["buyer_id"])
        refunded[(r["platform_id"], r["ref_trade_id"])] += Decimal(r["amount"])
    for key, total in refunded.items():
        assert total <= Decimal(sales[key]["amount"])
    full = [k for k, v in refunded.items() if v == Decimal(sales[k]["amount"])]
    assert [k[1] for k in full] == ["BJM-0004"]
    late = [r for r in refunds if local_date(r["traded_at"]).year > local_date(
        sales[(r["platform_id"], r["ref_trade_id"])]["traded_at"]).year]
    assert [r["trade_id"] for r in late] == ["XH-2025-1106"]


def test_timestamps_cover_the_window_and_year_edges_in_both_forms():
    trades = {t["trade_id"]: t for t in all_trades()}
    # P2/P3: UTC 16:30 on the day before is local 00:30 of the next day.
    assert local_date(trades["XH-2023-0002"]["traded_at"]) == date(2023, 5, 8)
    assert trades["XH-2023-0002"]["traded_at"].endswith("Z")
    assert local_date(trades["XH-2023-0001"]["traded_at"]) == date(2023, 5, 7)
    assert local_date(trades["XH-2023-0006"]["traded_at"]) == date(2024, 1, 1)  # 2023-12-31T16:30:00Z
    assert local_date(trades["XH-2023-0007"]["traded_at"]) == date(2023, 12, 31)  # local, no offset
    assert local_date(trades["XH-2026-0001"]["traded_at"]) == date(2026, 5, 8)
    assert local_date(trades["XH-2026-0002"]["traded_at"]) == date(2026, 5, 9)
    forms = {("Z" if t["traded_at"].endswith("Z") else "+08" if "+08:00" in t["traded_at"] else "local")
             for t in trades.values()}
    assert forms == {"Z", "+08", "local"}


def test_affiliations_hold_the_cases_the_readme_names():
    rows = read_rows("affiliations.csv")
    by_relation = Counter(r["relation"] for r in rows)
    assert by_relation == {"equity": 11, "control": 1, "family": 1}
    person_holdings = Counter(r["a_id"] for r in rows if r["a_id"].startswith("P:") and r["relation"] == "equity")
    assert person_holdings["P:0001"] == 2  # a person holding two companies
    assert [r["valid_from"] for r in rows if r["relation"] == "control"] == ["2024-07-01"]  # dated control
    assert sum(r["exempt"] == "true" for r in rows) == 2  # state ownership
    assert sorted(Decimal(r["share"]) for r in rows if r["share"])[:3] == [
        Decimal("0.10"), Decimal("0.20"), Decimal("0.2499")]  # pass-through legs and the 24.99 % case


def test_expected_payouts_file_follows_the_payouts_csv_contract():
    with open(SAMPLE / "expected" / "payouts.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["year", "clause", "beneficiary_id", "dataset_id", "amount"]
    body = rows[1:]
    assert body == sorted(body, key=lambda r: (int(r[0]), int(r[1]), r[2], r[3]))
    for _year, clause, beneficiary, dataset, amount in body:
        assert clause in ("6", "7") and uscc.is_valid(beneficiary)
        assert (dataset == "") == (clause == "7")
        assert amount == f"{Decimal(amount):.2f}" and Decimal(amount) > 0
    total_2024_clause6 = sum(Decimal(r[4]) for r in body if r[0] == "2024" and r[1] == "6")
    # README: 24,000 + 1,000,000 (capped O4) + 10,500 + 6,000 + 10,000 (O7) + 2,000 (O13) + 4,000 + 9,500
    assert total_2024_clause6 == Decimal("24000") + Decimal("1000000") + Decimal("10500") + Decimal("6000") + \
        Decimal("10000") + Decimal("2000") + Decimal("4000") + Decimal("9500")


def test_everything_loads_with_zero_rejected_rows(tmp_path):
    from settlement.inputs import ingest
    from settlement.inputs import registry
    from settlement.core import store

    db = tmp_path / "sample.duckdb"
    store.init(db)
    con = store.open_store(db)
    try:
        for kind, (name, _) in REGISTRIES.items():
            report = registry.load_registry(con, kind, SAMPLE / name, loaded_by="test")
            assert (report.status, report.rows_rejected, report.errors) == ("loaded", 0, ()), report
            assert report.rows_loaded == len(read_rows(name))
        for name in TRADE_FILES:  # name order: the late refund points into an earlier Xihu upload
            report = ingest.ingest_file(con, SAMPLE / name, file_name=name, uploaded_by="test")
            assert (report.status, report.rows_rejected, report.errors) == ("stored", 0, ()), report
            assert report.rows_stored == len(read_rows(name))
        stored = store.scalar(con, "SELECT count(*) FROM trades WHERE NOT retracted")
        assert stored == len(all_trades())
        # P3 on the stored rows: the UTC 16:30 trade of 31 Dec is local 1 Jan.
        assert con.execute(
            "SELECT local_date FROM trades WHERE trade_id = 'XH-2023-0006'").fetchall() == [(date(2024, 1, 1),)]
    finally:
        con.close()


def _load_sample(con, trade_files: list[str]) -> None:
    from settlement.inputs import registry

    for kind, (name, _) in REGISTRIES.items():
        assert registry.load_registry(con, kind, SAMPLE / name, loaded_by="test").status == "loaded"
    for name in trade_files:
        assert ingest_report_status(con, name) == "stored"


def ingest_report_status(con, name: str) -> str:
    from settlement.inputs import ingest

    return ingest.ingest_file(con, SAMPLE / name, file_name=name, uploaded_by="test").status


def test_settling_the_sample_gives_the_readme_payouts_and_the_late_refund_adjusts_2024(tmp_path):
    """End to end against the hand-worked expected/payouts.csv (README "Expected payouts")."""
    from ledgers import ledger
    from settlement import run
    from settlement.core import store
    from settlement.core.params import load_params

    params = load_params()
    db = tmp_path / "sample.duckdb"
    store.init(db)
    con = store.open_store(db)
    try:
        # Without the second Xihu file: YH-WEATHER 2024 base 5 × 20,000.00 = 100,000.00 → 10 % = 10,000.00.
        _load_sample(con, TRADE_FILES[:-1])
        run.settle_all(con, params=params)
        before = {(r[0], r[1], r[2], r[3]): r[4] for r in csv.reader(
            ledger.payouts_csv(ledger.payouts(con)).splitlines()[1:])}
        owner_o11 = "913301059554165438"
        assert before[("2024", "6", owner_o11, "YH-WEATHER")] == "10000.00"

        # The late refund (2025-01-15, 5,000.00 of a 2024-12-20 sale) belongs to 2024 (P9): 95,000.00 → 9,500.00,
        # appended as an adjustment of −500.00 to 2024 (P13).
        name = TRADE_FILES[-1]
        assert ingest_report_status(con, name) == "stored"
        results = {r.year: r for r in run.settle_all(con, params=params)}
        weather = [e for e in results[2024].appended if e.dataset_id == "YH-WEATHER"]
        assert [(e.kind, e.amount) for e in weather] == [("adjustment", Decimal("-500.00"))]

        produced = ledger.payouts_csv(ledger.payouts(con))
        expected = (SAMPLE / "expected" / "payouts.csv").read_text(encoding="utf-8")
        assert produced.splitlines() == expected.splitlines()

        # The P12 reasons the README names for its demonstration trades (latest run of each year).
        named = {
            "XH-2023-0001": {6: "OUT_OF_WINDOW", 7: "OUT_OF_WINDOW"},  # local 2023-05-07
            "XH-2026-0002": {6: "OUT_OF_WINDOW", 7: "OUT_OF_WINDOW"},  # 2026-05-08T16:30Z = local 05-09
            "XH-2024-0901": {6: "NOT_CERTIFIED"},  # local 06-30 23:59:59, dataset certified from 07-01
            "QT-24-0506": {7: "PLATFORM_NOT_CERTIFIED"},  # PB certified from 2024-07-01
            "BJM-0004": {6: "FULLY_REFUNDED", 7: "PLATFORM_NOT_CERTIFIED"},
            "QT-24-0501": {6: "RELATED_PARTY", 7: "RELATED_PARTY"},  # pass-through 20 % + 10 %
            "XH-2024-0601": {},  # B21 before the dated control starts: counts
            "XH-2024-0602": {6: "RELATED_PARTY", 7: "RELATED_PARTY"},  # after 2024-07-01
            "XH-2024-0805": {7: "RELATED_PARTY"},  # buyer held 30 % by the platform
            "XH-2024-0701": {},  # exempt state tie: not related
            "XH-2024-0301": {6: "BELOW_CALLER_THRESHOLD"},  # exactly 3 groups
            "QT-24-0201": {6: "BELOW_CALLER_THRESHOLD"},  # 4 buyers, 3 groups
        }
        rows = con.execute("""
            SELECT trade_id, clause, reason FROM exclusions
            WHERE run_id IN (SELECT max(run_id) FROM settlement_runs GROUP BY year)
        """).fetchall()
        found: dict[str, dict[int, str]] = {}
        for trade_id, clause, reason in rows:
            found.setdefault(trade_id, {})[clause] = reason
        assert {t: found.get(t, {}) for t in named} == named
    finally:
        con.close()


def test_the_chinese_excel_export_loads_with_every_normalisation_reported(tmp_path):
    from settlement.core import store
    from settlement.inputs import ingest

    db = tmp_path / "excel.duckdb"
    store.init(db)
    con = store.open_store(db)
    try:
        report = ingest.ingest_file(con, SAMPLE / "trades_excel_gb18030_2025.csv", uploaded_by="test")
        assert (report.status, report.rows_read, report.rows_stored, report.rows_rejected) == ("stored", 2, 2, 0)
        assert report.warnings == (
            "file encoding: GB18030 (read as such; save as 'CSV UTF-8' to avoid this)",
            "2 cells had full-width or compatibility characters, read after Unicode NFKC (e.g. '１２３' as '123')",
            "2 amounts had a currency sign (¥, CNY) or thousands separators, read as plain decimals "
            "(e.g. '¥1,234.50' as 1234.50)",
            "2 date-times were written as YYYY/M/D H:MM, read as local time (P3)",
            "2 rows with every cell empty were skipped",
        )
        assert con.execute("SELECT trade_id, local_date, amount::VARCHAR FROM trades ORDER BY trade_id").fetchall() == [
            ("XLS-2025-0001", date(2025, 3, 5), "12345.60"), ("XLS-2025-0002", date(2025, 4, 8), "1000.00")]
    finally:
        con.close()
