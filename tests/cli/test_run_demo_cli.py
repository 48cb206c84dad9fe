"""End to end on sample_trades/ (hand-worked payouts in sample_trades/expected/payouts.csv) and the
settlement CLI commands (`settle run`, `settle explain`, `settle demo`)."""

from __future__ import annotations

from decimal import Decimal as D

from pathlib import Path

from typer.testing import CliRunner

from ledgers import ledger
from settlement.core import store
from settlement.cli import app
from settlement.tools.demo import load_and_settle
from tests.support.scenario import PARAMS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_trades"
runner = CliRunner()


def test_sample_exchange_settles_to_the_hand_worked_payouts(tmp_path):
    path = tmp_path / "demo.duckdb"
    store.init(path)
    con = store.open_store(path)
    result = load_and_settle(con, SAMPLE, params=PARAMS, by="test")
    assert [r.year for r in result.runs] == [2023, 2024, 2025, 2026]
    expected = (SAMPLE / "expected" / "payouts.csv").read_text()
    assert ledger.payouts_csv(ledger.payouts(con)) == expected
    # loading and settling again changes nothing (same bytes, same targets: P13)
    again = load_and_settle(con, SAMPLE, params=PARAMS, by="test")
    assert all(r.appended == () for r in again.runs)
    assert ledger.verify(con).ok


def test_cli_run_explain_and_demo(tmp_path):
    db = tmp_path / "cli.duckdb"
    out = runner.invoke(app, ["demo", "--db", str(db), "--sample", str(SAMPLE)])
    assert out.exit_code == 0, out.output
    assert "grand total" in out.output and "1,265,658.02" in out.output
    # issue 11: the demo walks 2024 through every state and prints the accounts, which tie out
    assert "lifecycle of 2024: " in out.output and "entries proposed again" in out.output
    assert "approved by demo:regulator" in out.output and "dismissed" in out.output
    con = store.open_store(db)
    try:
        accounts = con.execute(
            "SELECT sum(entitled), sum(approved), sum(disbursed), sum(paid), sum(outstanding) "
            "FROM beneficiary_accounts WHERE year = 2024").fetchall()
    finally:
        con.close()
    # 2024 in full (README): 1,066,000.00 clause 6 + 130,000.00 clause 7 = 1,196,000.00, all paid
    assert accounts == [(D("1196000.00"), D("1196000.00"), D("1196000.00"), D("1196000.00"), D("0.00"))]
    out = runner.invoke(app, ["run", "--year", "2024", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "appended nothing" in out.output
    out = runner.invoke(app, ["explain", "dataset", "XS-LOGISTICS", "--year", "2024", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "qualifies" in out.output and "6,000.00" in out.output and "RELATED_PARTY" in out.output
    out = runner.invoke(app, ["explain", "platform", "913301108573022438", "--year", "2024", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "127,800.00" in out.output
    out = runner.invoke(app, ["explain", "dataset", "XS-LOGISTICS", "--year", "2019", "--db", str(db)])
    assert out.exit_code == 1 and "no settlement run for 2019" in out.output
