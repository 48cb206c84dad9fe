"""The statement (对账单) agrees with the ledger and the accounts to the cent on every surface (issue 11):
`settle statement`, `GET /v1/statements/{id}` and the web console's download are one source
(``settlement.lifecycle.statement``). And a regulator's statement lists the integrity flags (issue 13), an
owner's never does.

The sample exchange (sample_trades/) is loaded and settled, then 2024 walks approve → notice (0 working
days) → disburse (one owner's line held by an objection) → bank confirmation. Every surface is read
first, each with the store to itself (the CLI opens the file; the in-process app then holds it), then
compared.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.console import statement as console_statement
from api.settings import Settings
from settlement.access import tokens
from settlement.cli import app
from settlement.core import store
from settlement.core.params import load_params
from settlement.integrity.flags import review_flag
from settlement.lifecycle import disburse, notice, objections, review
from settlement.lifecycle.statement import ACCOUNT_FIELDS, ACCOUNT_ZH, CLAUSE_ZH, render, statement
from settlement.tools.demo import load_and_settle
from tests.lifecycle.statement_support import section, sign_in, titles, without_section, xlsx_grid
from tests.support.scenario import settle, world
from tests.support.world import sale, upload

ROOT = Path(__file__).resolve().parents[2]
YEAR, ON = 2024, dt.date(2026, 12, 1)
O4 = "91330102576445635L"  # owner of BJ-SPEECH-ZH and BJ-VISION-OCR: the cap case of the sample
HELD = "91330110989996283C"  # owner of HZ-FIN-NEWS (4,000.00): an objection holds it, so paid ≠ entitled
FLAGS = "诚信标记（仅监管方可见，不改变金额）"
LABEL = dict(ACCOUNT_ZH)


def _cli(db: Path, *args: str) -> str:
    res = CliRunner().invoke(app, [*args, "--db", str(db)])
    assert res.exit_code == 0, res.stderr
    return res.stdout


@pytest.fixture(scope="module")
def surfaces(tmp_path_factory):
    """The paid-out sample store and what each surface says about every 2024 beneficiary."""
    folder = tmp_path_factory.mktemp("statement")
    db = folder / "s.duckdb"
    store.init(db)
    con = store.open_store(db)
    load_and_settle(con, ROOT / "sample_trades", params=load_params(), by="test:loader")
    for run in review.runs_list(con, YEAR):  # oldest first (review order)
        if run["state"] == "proposed":
            review.approve_run(con, run["run_id"], by="test:regulator", acknowledge_flags=True)
    notice.publish_notice(con, YEAR, by="test:regulator", on=ON, working_days=0)
    objections.object_line(con, YEAR, HELD, by="test:public", reason="held for the test", dataset_id="HZ-FIN-NEWS")
    batch = disburse.disburse(con, YEAR, by="test:regulator", on=ON)
    disburse.confirm_paid(con, batch.batch_id, paid_on=ON, by="test:bank")
    who = [r[0] for r in con.execute("SELECT beneficiary_id FROM beneficiary_accounts WHERE year = ? ORDER BY 1",
                                     [YEAR]).fetchall()]
    owners = [r[0] for r in con.execute("SELECT DISTINCT beneficiary_id FROM key_accounts WHERE year = ? AND clause = 6 "
                                        "ORDER BY 1", [YEAR]).fetchall()]
    made = {b: tokens.create_token(con, "owner", scope_id=b, created_by="test").token for b in owners}
    regulator = tokens.create_token(con, "regulator", created_by="test").token
    con.close()
    out: dict = {"db": db, "who": who, "owners": owners, "cli": {}, "api": {}, "console": {}, "console_xlsx": {}}
    out["payouts"] = list(csv.DictReader(io.StringIO(_cli(db, "payouts", "--year", str(YEAR), "--format", "csv"))))
    for b in who:
        path = folder / f"{b}.xlsx"
        _cli(db, "statement", "--year", str(YEAR), "--beneficiary", b, "--format", "xlsx", "--out", str(path))
        out["cli"][b] = xlsx_grid(path)
    with TestClient(create_app(Settings(db=db)), raise_server_exceptions=False) as client:
        for b in who:
            r = client.get(f"/v1/statements/{b}", params={"year": YEAR, "format": "xlsx"},
                           headers={"Authorization": f"Bearer {regulator}"})
            assert r.status_code == 200, r.text
            out["api"][b] = xlsx_grid(r.content)
        for b in owners:
            sign_in(client, made[b])
            r = client.get("/statement.csv", params={"year": YEAR})
            assert r.status_code == 200 and r.content.startswith("\ufeff".encode()), r.text
            out["console"][b] = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
            r = client.get("/statement.xlsx", params={"year": YEAR})
            out["console_xlsx"][b] = (xlsx_grid(r.content, 0), xlsx_grid(r.content, 1))
    return out


def _sum(values) -> D:
    return sum((D(v) for v in values), D("0.00"))


def test_o4_statement_is_the_hand_worked_cap_split(surfaces) -> None:
    """POLICY P10.3–P10.7 by hand for O4 in 2024 (sample_trades/README.md):
    BJ-SPEECH-ZH: callers B17, B18, B19 (2,000,000.00 each), B26 (1,500,000.00), B27 (500,000.00): 5 unrelated
      groups > 3, base 8,000,000.00, gross 10 % = 800,000.00, no prior award: payable 800,000.00.
    BJ-VISION-OCR: B17, B18, B29 (1,000,000.00 each), B28 (1,000,000.05): 4 groups > 3, base 4,000,000.05,
      gross round_half_up(400,000.005) = 400,000.01.
    O4's total 1,200,000.01 > cap 1,000,000.00 (P10.7), split in cents by payable:
      100,000,000 × 80,000,000 / 120,000,001 = 66,666,666.11… → 66,666,666
      100,000,000 × 40,000,001 / 120,000,001 = 33,333,333.88… → 33,333,333; the 1 cent left goes to the
      larger remainder (BJ-VISION-OCR): 666,666.66 + 333,333.34 = 1,000,000.00, approved, noticed, paid."""
    grid = surfaces["api"][O4]
    basis = {r["数据集编号"]: r for r in section(grid, "核算依据：第六条（现行核算结果）")}
    assert [(d, r["非关联调用企业数"], r["基数（元）"], r["奖励（元）"], r["应付（封顶前，元）"], r["封顶分摊"],
             r["核定金额（元）"]) for d, r in basis.items()] == [
        ("BJ-SPEECH-ZH", "5", "8000000.00", "800000.00", "800000.00", "是", "666666.66"),
        ("BJ-VISION-OCR", "4", "4000000.05", "400000.01", "400000.01", "是", "333333.34")]
    assert section(grid, "账户汇总") == [{
        LABEL["entitled"]: "1000000.00", LABEL["proposed"]: "0.00", LABEL["approved"]: "1000000.00",
        LABEL["noticed"]: "1000000.00", LABEL["disbursed"]: "1000000.00", LABEL["paid"]: "1000000.00",
        LABEL["outstanding"]: "0.00"}]
    assert [(r["拨付批次"], r["数据集编号"], r["金额（元）"], r["类型"], r["到账日期"]) for r in section(grid, "拨付与追回")] \
        == [("D2024-001", "BJ-SPEECH-ZH", "666666.66", "拨付", "2026-12-01"),
            ("D2024-001", "BJ-VISION-OCR", "333333.34", "拨付", "2026-12-01")]
    assert [(r["dataset_id"], r["payable"], r["cap_share"], r["ledger_balance"], r["paid"])
            for r in surfaces["console"][O4]] == [("BJ-SPEECH-ZH", "800000.00", "666666.66", "666666.66", "666666.66"),
                                                 ("BJ-VISION-OCR", "400000.01", "333333.34", "333333.34", "333333.34")]


def test_every_statement_ties_to_the_accounts_view_and_to_payouts(surfaces) -> None:
    """For each beneficiary: the account lines are the ``beneficiary_accounts`` row, the keys add up to them,
    and Σ ledger entries (runs not rejected) is exactly `settle payouts` of that beneficiary and year."""
    expected = [r for r in csv.DictReader((ROOT / "sample_trades/expected/payouts.csv").open(encoding="utf-8"))
                if r["year"] == str(YEAR)]
    assert surfaces["payouts"] == expected  # the README's hand-worked payouts
    assert len(surfaces["who"]) == len({r["beneficiary_id"] for r in expected}) == 10
    con = duckdb.connect(str(surfaces["db"]), read_only=True)
    try:
        rel = con.sql("SELECT * FROM beneficiary_accounts WHERE year = ?", params=[YEAR])
        view = {r[rel.columns.index("beneficiary_id")]: dict(zip(rel.columns, r)) for r in rel.fetchall()}
        for b in surfaces["who"]:
            st = statement(con, YEAR, b)
            assert st.account == {k: view[b][k] for k in ACCOUNT_FIELDS}, b
            for k in ACCOUNT_FIELDS:
                assert _sum(getattr(line, k) for line in st.keys) == st.account[k], (b, k)
            entries = _sum(e[4] for e in st.entries if e[6] != "rejected")
            paid_out = _sum(r["amount"] for r in surfaces["payouts"] if r["beneficiary_id"] == b)
            assert entries == paid_out == st.account["entitled"] == st.account["approved"] != D("0.00"), b
            assert st.account["paid"] == st.account["disbursed"] == (D("0.00") if b == HELD else entries), b
            assert st.account["outstanding"] == (D("4000.00") if b == HELD else D("0.00")), b
            # and in the file: the ledger section's amounts add up to the same, as exact strings
            ledger = section(surfaces["cli"][b], "台账明细（核算批次）")
            assert f"{_sum(r['金额（元）'] for r in ledger if r['状态'] != '已退回'):.2f}" == f"{paid_out:.2f}"
            assert section(surfaces["cli"][b], "账户汇总") == [{LABEL[k]: f"{st.account[k]:.2f}" for k in ACCOUNT_FIELDS}]
    finally:
        con.close()


def test_cli_api_and_console_give_the_same_amounts(surfaces) -> None:
    """`settle statement` and the API write the same file, cell for cell; the console's CSV rows are its
    dataset lines and key accounts; the console's xlsx holds the same statement less the regulator's flags."""
    for b in surfaces["who"]:
        assert surfaces["cli"][b] == surfaces["api"][b], b
        assert FLAGS in titles(surfaces["api"][b])  # the bureau's reader: a regulator
    for b in surfaces["owners"]:
        grid = surfaces["api"][b]
        basis = {r["数据集编号"]: r for r in section(grid, "核算依据：第六条（现行核算结果）")}
        keys = {r["数据集编号"]: r for r in section(grid, "分项账户（每个台账科目）") if r["条款"] == CLAUSE_ZH[6]}
        rows = surfaces["console"][b]
        assert [r["dataset_id"] for r in rows] == list(basis) and rows, b
        for r in rows:
            line, key = basis[r["dataset_id"]], keys.get(r["dataset_id"], {})
            assert (r["owner_id"], r["dataset_name"], r["unrelated_callers"], r["base"], r["gross"],
                    r["prior_awards"], r["payable"], r["cap_share"], r["excluded_trades"]) == (
                b, line["数据集名称"], line["非关联调用企业数"], line["基数（元）"], line["奖励（元）"],
                line["已获资助（元）"], line["应付（封顶前，元）"],
                line["核定金额（元）"] if r["capped"] == "yes" else line["应付（封顶前，元）"], line["不计入笔数"]), b
            assert (r["ledger_balance"], r["paid"]) == (key.get(LABEL["entitled"], "0.00"),
                                                       key.get(LABEL["paid"], "0.00")), b
        first, whole = surfaces["console_xlsx"][b]
        shown = console_statement.AMOUNTS | {"owner_id", "dataset_id", "dataset_name", "qualifies", "capped"}
        assert first[0] == list(console_statement.COLUMNS) == list(rows[0])
        assert [{k: v for k, v in zip(first[0], row) if k in shown} for row in first[1:]] == [
            {k: v for k, v in r.items() if k in shown} for r in rows]  # the CSV's amounts, the same strings
        assert whole == without_section(grid, FLAGS) and FLAGS not in titles(whole), b


@pytest.fixture()
def flagged(tmp_path: Path):
    """D1 of OWN1 qualifies only thanks to B4's 1.00 (4 caller groups, B4's net < 2 % of the base): one
    THIN_THRESHOLD flag on D1 (docs/integrity.md)."""
    con = world(tmp_path)
    upload(con, [sale(f"t{i}", b, "1000.00", f"2024-03-0{i + 1} 10:00:00") for i, b in enumerate(("B1", "B2", "B3"))]
           + [sale("t4", "B4", "1.00", "2024-03-05 10:00:00")])
    settle(con, YEAR)
    yield con
    con.close()


def test_a_regulators_statement_lists_the_flags_an_owners_never_does(flagged) -> None:
    con = flagged
    flags = statement(con, YEAR, "OWN1").flags
    assert [(f.code, f.dataset_id, f.platform_id, f.review, f.reviewed_by) for f in flags] == [
        ("THIN_THRESHOLD", "D1", "", "", "")]
    doc = render(statement(con, YEAR, "OWN1", reader="regulator"))
    assert doc.sections[-1].title == FLAGS and doc.sections[-1].headers == (
        "标记编号", "代码", "数据集编号", "平台编号", "复核状态", "复核人")
    assert doc.sections[-1].rows == ((flags[0].flag_id, "THIN_THRESHOLD", "D1", "", "未复核", ""),)
    review_flag(con, flags[0].flag_id, by="test:reviewer", outcome="cleared", comment="a real customer")
    assert render(statement(con, YEAR, "OWN1")).sections[-1].rows == (
        (flags[0].flag_id, "THIN_THRESHOLD", "D1", "", "已复核：排除", "test:reviewer"),)
    # the platform's statement names no flag of the owner's dataset
    assert render(statement(con, YEAR, "PLAT")).sections[-1].rows == ()
    owner = statement(con, YEAR, "OWN1", reader="owner")
    assert owner.flags is None and FLAGS not in [s.title for s in render(owner).sections]
    # same figures whoever reads: only the flags differ
    assert render(owner).sections == render(statement(con, YEAR, "OWN1")).sections[:-1]
    csv_text = console_statement.to_csv(owner).decode("utf-8-sig")
    book = console_statement.to_xlsx(owner)
    cells = "\n".join(",".join(row) for grid in (xlsx_grid(book, 0), xlsx_grid(book, 1)) for row in grid)
    assert "D1" in csv_text and "D1" in cells
    assert not any("THIN_THRESHOLD" in t or "诚信标记" in t for t in (csv_text, cells))
    assert [r["payable"] for r in console_statement.rows(owner)] == ["300.10"]  # 10 % of 3,001.00
