"""Shared scenario plumbing for the clause 6 / clause 7 / run tests: a small exchange in a fresh store,
settled end to end through ``settlement.run.run_settlement`` (tests only)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from ledgers import ledger
from settlement.core.params import load_params
from settlement.run import run_settlement
from tests.support.world import load_affiliations, load_datasets, load_platforms, load_prior_awards, new_store

PARAMS = load_params()
# the run whose stored exclusions / explanations describe the year's latest run (run_explanation_source)
LATEST = "(SELECT source_run_id FROM run_explanation_source WHERE year = ? ORDER BY run_id DESC LIMIT 1)"
Y23, Y24 = date(2023, 1, 1), date(2024, 1, 1)


def world(tmp_path, *, datasets=None, platforms=None, affiliations=None, prior=None):
    """PLAT certified from 2023-01-01 (open end) and D1 of OWN1 certified from 2023-01-01 unless given."""
    con = new_store(tmp_path)
    load_platforms(con, platforms if platforms is not None else [("PLAT", Y23, None)])
    load_datasets(con, datasets if datasets is not None else [("D1", "OWN1", Y23, None)])
    if affiliations is not None:
        load_affiliations(con, affiliations)
    if prior is not None:
        load_prior_awards(con, prior)
    return con


def settle(con, year: int) -> ledger.RunResult:
    return run_settlement(con, year, params=PARAMS)


def paid(con, year: int) -> dict[tuple[int, str, str], Decimal]:
    """Σ ledger entries per key of ``year`` (non-zero keys only)."""
    df = ledger.payouts(con, year)
    return {(c, b, d): a for _y, c, b, d, a in df.iter_rows()}


def _exclusions(con, year: int, clause: int, column: str) -> dict[str, str]:
    """trade_id -> ``column`` of the clause's exclusions in the latest run of ``year``."""
    return dict(con.execute(f"SELECT trade_id, {column} FROM exclusions WHERE clause = ? AND run_id = {LATEST}",
                            [clause, year]).fetchall())


def reasons(con, year: int, clause: int) -> dict[str, str]:
    """trade_id -> P12 reason in the latest run of ``year``."""
    return _exclusions(con, year, clause, "reason")


def details(con, year: int, clause: int) -> dict[str, str]:
    """trade_id -> the exclusion's detail (what the reason is about) in the latest run of ``year``."""
    return _exclusions(con, year, clause, "detail")


def dataset_row(con, year: int, dataset_id: str) -> dict:
    rel = con.sql(
        "SELECT * FROM run_dataset_results WHERE dataset_id = ? AND run_id = "
        + LATEST,
        params=[dataset_id, year],
    )
    rows = rel.fetchall()
    assert len(rows) == 1, rows
    return dict(zip(rel.columns, rows[0]))


D = Decimal
