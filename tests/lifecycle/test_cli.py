"""`settle run --by`, `runs list`, `approve`, `reject`, `notice`, `object`, `resolve-objection`, `disburse`,
`disbursed`, `payouts --state`, `statement` on a store settled by the real engine (issue 11)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal as D
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from settlement.cli import app
from tests.support.scenario import world
from tests.support.world import sale, upload

BUYERS = ("B1", "B2", "B3", "B4")


@pytest.fixture()
def db(tmp_path: Path, monkeypatch) -> Path:
    """D1 of OWN1 sold to four unrelated buyers on PLAT in 2024 (base 4,000.00: reward 400.00; the platform
    earns 1 % of 4,500.00 = 45.00), plus a sale to the owner itself (RELATED_PARTY for clause 6)."""
    monkeypatch.setenv("SETTLE_NOTICE_WORKING_DAYS", "0")
    con = world(tmp_path)
    upload(con, [sale(f"t{i}", b, "1000.00", f"2024-03-0{i + 1} 10:00:00") for i, b in enumerate(BUYERS)]
           + [sale("t9", "OWN1", "500.00", "2024-03-09 10:00:00")])
    con.close()
    return tmp_path / "t.duckdb"


def settle(db: Path, *args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [*args, "--db", str(db)])
    return res.exit_code, res.stdout, res.stderr


def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_a_year_from_run_to_payment_through_the_cli(db: Path, tmp_path: Path) -> None:
    assert settle(db, "run", "--year", "2024", "--by", "alice")[0] == 0
    code, out, _ = settle(db, "runs", "list", "--format", "json")
    assert [(r["run_id"], r["year"], r["started_by"], r["state"], r["entries"]) for r in json.loads(out)] == \
        [(1, 2024, "alice", "proposed", 2)]
    # nothing approved yet: the notice is the header only
    notice = tmp_path / "n.csv"
    assert settle(db, "notice", "--year", "2024", "--format", "csv", "--out", str(notice))[0] == 0
    assert notice.read_text(encoding="utf-8").splitlines() == [
        "公示编号,年度,条款,企业名称,企业代码,数据集编号,数据集名称,审核通过金额（元）,公示日期,可拨付日期,账本锚点"]
    code, _, err = settle(db, "approve", "1", "--by", "alice")
    assert code == 1 and "four eyes" in err
    assert settle(db, "approve", "1", "--by", "bob", "--comment", "checked")[0] == 0
    assert settle(db, "reject", "1", "--by", "carol", "--reason", "late")[0] == 1  # no longer proposed
    assert settle(db, "notice", "--year", "2024", "--format", "csv", "--out", str(notice))[0] == 0
    assert [(r["企业代码"], r["数据集编号"], r["审核通过金额（元）"]) for r in rows(notice)] == \
        [("OWN1", "D1", "400.00"), ("PLAT", "", "45.00")]
    # an objection holds the platform's line back; the owner's is paid
    code, out, _ = settle(db, "object", "--year", "2024", "--beneficiary", "PLAT", "--by", "citizen",
                          "--reason", "volume looks high")
    objection = out.split()[1]
    pay = tmp_path / "p.csv"
    code, out, _ = settle(db, "disburse", "--year", "2024", "--format", "csv", "--out", str(pay))
    assert code == 0 and out.splitlines()[-1] == "D2024-001"
    assert [(r["batch_id"], r["beneficiary_id"], r["amount"], r["kind"]) for r in rows(pay)] == \
        [("D2024-001", "OWN1", "400.00", "payment")]
    assert settle(db, "resolve-objection", objection, "--by", "bob", "--outcome", "dismissed")[0] == 0
    code, out, _ = settle(db, "disburse", "--year", "2024", "--out", str(pay))
    assert out.splitlines()[-1] == "D2024-002" and [r["beneficiary_id"] for r in rows(pay)] == ["PLAT"]
    assert settle(db, "disbursed", "D2024-001", "--paid-on", "2026-12-02")[0] == 0
    assert settle(db, "disbursed", "D2024-001", "--paid-on", "2026-12-02")[0] == 1  # already confirmed
    code, out, _ = settle(db, "payouts", "--state", "disbursed", "--format", "csv")
    assert out.splitlines() == ["year,clause,beneficiary_id,dataset_id,amount", "2024,6,OWN1,D1,400.00",
                                "2024,7,PLAT,,45.00"]
    code, out, _ = settle(db, "disburse", "--year", "2024", "--out", str(pay))
    assert code == 0 and "nothing to disburse" in out and pay.read_text().splitlines() == [
        "batch_id,year,clause,beneficiary_id,dataset_id,amount,kind"]
    code, out, _ = settle(db, "ledger", "verify")
    assert code == 0 and "lifecycle records verified" in out


def test_statement_pdf_has_the_ledgers_figures_and_embeds_its_font(db: Path, tmp_path: Path) -> None:
    settle(db, "run", "--year", "2024", "--by", "alice")
    settle(db, "approve", "1", "--by", "bob")
    settle(db, "notice", "--year", "2024", "--format", "pdf", "--out", str(tmp_path / "n.pdf"))
    settle(db, "disburse", "--year", "2024", "--out", str(tmp_path / "p.csv"))
    out = tmp_path / "s.pdf"
    code, _, err = settle(db, "statement", "--year", "2024", "--beneficiary", "OWN1", "--format", "pdf",
                          "--out", str(out))
    assert code == 0, err
    reader = PdfReader(out)
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "对账单" in text and "已审核通过" in text and "\n拨付\n" in text
    # account, ledger, notice and payment lines: 400.00 each; the basis: 4 callers, base 4,000.00
    assert text.count("400.00") >= 5 and "4,000.00" in text
    assert "RELATED_PARTY" in text and "关联交易" in text
    fonts = [f.get_object() for p in reader.pages for f in p["/Resources"]["/Font"].values()]
    descendants = [d.get_object() for f in fonts for d in f.get("/DescendantFonts", [])] + fonts
    assert any("/FontFile2" in d.get("/FontDescriptor", {}) for d in descendants), "CJK font not embedded"
    # the statement's account is the ledger's: entitled / approved / disbursed per state, Σ over OWN1's keys
    import duckdb

    from ledgers import ledger
    from settlement.lifecycle.statement import account
    with duckdb.connect(str(db), read_only=True) as con:
        figures = account(con, 2024, "OWN1")
        for field, state in (("entitled", None), ("approved", "approved"), ("disbursed", "disbursed")):
            df = ledger.payouts(con, 2024, beneficiary_id="OWN1", state=state)
            assert figures[field] == sum(df["amount"].to_list(), D("0.00")) == D("400.00")
    assert figures["outstanding"] == D("0.00") and f"{figures['approved']:,.2f}" in text
    xlsx = tmp_path / "s.xlsx"
    assert settle(db, "statement", "--year", "2024", "--beneficiary", "OWN1", "--format", "xlsx",
                  "--out", str(xlsx))[0] == 0
    assert settle(db, "statement", "--year", "2024", "--beneficiary", "NOBODY", "--format", "pdf",
                  "--out", str(out))[0] == 1


def test_rejecting_a_run_voids_it_and_payouts_keep_their_meaning(db: Path) -> None:
    settle(db, "run", "--year", "2024", "--by", "alice")
    code, _, err = settle(db, "reject", "1", "--by", "alice", "--reason", "x")
    assert code == 1 and "four eyes" in err
    assert settle(db, "reject", "1", "--by", "bob", "--reason", "registry outdated")[0] == 0
    assert settle(db, "payouts", "--format", "csv")[1].splitlines() == ["year,clause,beneficiary_id,dataset_id,amount"]
    assert settle(db, "run", "--year", "2024", "--by", "alice")[0] == 0  # proposes again
    code, out, _ = settle(db, "payouts", "--state", "proposed", "--format", "csv")
    assert out.splitlines()[1:] == ["2024,6,OWN1,D1,400.00", "2024,7,PLAT,,45.00"]
    assert D(json.loads(settle(db, "runs", "list", "--format", "json")[1])[1]["amount"]) == D("445.00")
