"""walk_year (for settle demo): the sample year goes through every state and its accounts tie out."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from ledgers import ledger
from settlement.core import store
from settlement.core.params import load_params
from settlement.lifecycle.walkthrough import walk_year
from settlement.tools.demo import load_and_settle

SAMPLE = Path(__file__).resolve().parents[2] / "sample_trades"


def test_walk_year_reaches_paid_and_accounts_tie_out(tmp_path: Path) -> None:
    path = tmp_path / "demo.duckdb"
    store.init(path)
    con = store.open_store(path)
    params = load_params()
    load_and_settle(con, SAMPLE, params=params, by="demo:loader")
    before = {r[2:4]: r[4] for r in ledger.payouts(con, 2024).iter_rows()}
    walk = walk_year(con, 2024, params=params)
    states = {r[0] for r in con.execute("SELECT DISTINCT state FROM run_states WHERE year = 2024").fetchall()}
    assert {"rejected", "approved"} <= states
    assert any("dismissed" in s for s in walk.steps) and any("paid on" in s for s in walk.steps)
    paid = {r[2:4]: r[4] for r in ledger.payouts(con, 2024, state="disbursed").iter_rows()}
    assert paid == before  # the settled year is paid in full, key by key
    for a in walk.accounts:
        assert a["approved"] == a["disbursed"] == a["paid"] == a["entitled"] and a["outstanding"] == D("0.00")
    assert ledger.verify(con).ok
    con.close()
