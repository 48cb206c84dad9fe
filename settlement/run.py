"""The settlement run: one year's stage pipeline, from stored inputs to appended ledger deltas.

Owns: ``run_settlement`` (affiliates → clauses → ledger append → run explanations), ``settle_all`` (which
years a run without --year settles, CONTRACT), ``settle_years`` (what `settle run [--year]` and
`POST /v1/settlements` both do, including the year outside the policy window) and the inputs fingerprint. Writes the run tables of
``0004_settlement.sql`` (run_dataset_results, run_caller_buyers, run_platform_results), the compact
record of ``0011_compact_exclusions.sql`` the regulator view ``exclusions`` derives a run's exclusions from,
and their counts (``run_exclusion_counts``, ``0013_exclusion_counts.sql``).
Must not import the CLI or the API; the ledger is reached only through ``ledgers.ledger.append_run``.

Inputs fingerprint (sha256, recorded per run and per entry): a canonical JSON of the year, the parameter
file hash, every upload that stored trades as (id, sha256, retracted?) (retracted trades are listed as
RETRACTED exclusions, so they are inputs of the run's results too), the registry load
ids the current views use (datasets and platforms: every load id still visible; affiliations and prior
awards: the current set's load id). Two runs with the same fingerprint see the same inputs, so the second
appends nothing (P13). All uploads are included, not only the year's: a late refund in 2025 of a
2024 sale changes 2024 (P9), and finding which uploads touch a year would cost a scan of the trades.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb

from ledgers import ledger
from settlement import backends
from settlement.clauses import targets as clauses
from settlement.clauses.portable import statement
from settlement.clauses.relations import run_params_sql, run_relations
from settlement.clauses.targets import Targets
from settlement.core.sql import registered
from settlement.inputs import digests
from settlement.integrity.flags import compute_flags

ENGINE_VERSION = "settlement-engine/1 (P1-P13 of POLICY.md)"


def inputs_fingerprint(con: duckdb.DuckDBPyConnection, year: int, *, params_hash: str) -> str:
    """sha256 over what a run of ``year`` reads (see module docstring)."""
    # Every upload that stored trades, with its retracted flag: exclusions list retracted trades too
    # (P12 RETRACTED), so an upload-then-retract changes the run's results even when the targets do not.
    uploads = con.execute(
        "SELECT id, sha256, retracted_at IS NOT NULL FROM uploads WHERE rows_stored > 0 ORDER BY id"
    ).fetchall()
    loads = {
        "datasets": [r[0] for r in con.execute("SELECT DISTINCT load_id FROM datasets ORDER BY 1").fetchall()],
        "platforms": [r[0] for r in con.execute("SELECT DISTINCT load_id FROM platforms ORDER BY 1").fetchall()],
        "affiliations": con.execute(
            "SELECT max(load_id) FROM registry_loads WHERE kind = 'affiliations'"
        ).fetchall()[0][0],
        "prior_awards": con.execute(
            "SELECT max(load_id) FROM registry_loads WHERE kind = 'prior_awards'"
        ).fetchall()[0][0],
    }
    doc = {
        "year": year,
        "params_sha256": params_hash,
        "uploads": [[int(i), s, bool(r)] for i, s, r in uploads],
        "registry_loads": loads,
        "engine": ENGINE_VERSION,
        "row_digests": digests.for_run(con),  # issue 15: digests of the stored rows (settlement.inputs.digests)
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def store_run_results(con: duckdb.DuckDBPyConnection, run_id: int, targets: Targets) -> None:
    """Copy the staged explanations and exclusions of ``targets`` under ``run_id`` (set-based inserts).
    Runs inside the caller's transaction (the one that appended the ledger entries)."""
    with (registered(con, targets.datasets, "datasets") as datasets,
          registered(con, targets.platforms, "platforms") as platforms):
        _store_trade_level(con, run_id, targets)
        caller_cols = "year, dataset_id, owner_id, group_id, buyer_id, eligible_sales, net_amount, group_counted"
        con.execute(
            f"INSERT INTO run_caller_buyers (run_id, {caller_cols}) "
            f"SELECT {int(run_id)}, {caller_cols} FROM {targets.callers_table}"
        )
        dataset_cols = ("year, dataset_id, owner_id, eligible_sales, caller_groups, caller_threshold, qualifies, "
                        "base, rate, gross, prior_awards, payable, owner_payable_total, owner_cap, capped, target, "
                        "dataset_payable")
        con.execute(
            f"INSERT INTO run_dataset_results (run_id, {dataset_cols}) "
            f"SELECT {int(run_id)}, {dataset_cols} FROM {datasets}"
        )
        con.execute(
            f"INSERT INTO run_platform_results SELECT {int(run_id)}, year, platform_id, eligible_sales, volume, "
            f"rate, subsidy_uncapped, cap, target FROM {platforms}"
        )


def _store_trade_level(con: duckdb.DuckDBPyConnection, run_id: int, targets: Targets) -> None:
    """The compact record the regulator view ``exclusions`` derives the run's P12 exclusions from (migration
    0011; never millions of rows) and, from a remote backend, the caller rows (through Parquet files)."""
    record, rid = targets.record or {}, int(run_id)
    con.execute(f"INSERT INTO exclusion_runs SELECT {rid}, year, in_scope, window_start, window_end, window_text, "
                f"threshold FROM {run_params_sql(targets.params)}")
    con.execute(f"INSERT INTO exclusion_day_groups SELECT {rid}, party_id, day_from, day_to, group_id "
                f"FROM affiliate_day_groups WHERE year = {int(targets.year)}")
    for table, frame in (("exclusion_uploads", "uploads"), ("exclusion_datasets", "datasets"),
                         ("exclusion_platforms", "platforms"), ("exclusion_paths", "paths")):
        with registered(con, record[frame], frame) as rows:
            con.execute(f"INSERT INTO {table} SELECT {rid}, * FROM {rows}")
    _store_exclusion_counts(con, rid, targets)
    backend = targets.backend
    if backend is not None and not backend.local:
        with backend.spill(f"SELECT * FROM {targets.callers_table}") as files:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {targets.callers_table} AS "
                        f"SELECT * FROM read_parquet({files!r})")


def _store_exclusion_counts(con: duckdb.DuckDBPyConnection, rid: int, targets: Targets) -> None:
    """run_exclusion_counts (migration 0013): the run's exclusion rows counted per clause, dataset, owner,
    platform, reason and kind (``clauses/counts.sql``: from the run's sale status and refunds, without building
    the rows or their detail texts), so readers never derive the view to count. A remote backend computes the
    few grouped rows and hands them back. A run without staged exclusions (``exclusions_sql``) counts nothing."""
    if not targets.exclusions_sql:
        return
    counts = statement("counts", **run_relations(targets.params, targets.names))
    columns = "year, clause, dataset_id, owner_id, platform_id, reason, kind, trades"
    backend = targets.backend
    if backend is None or backend.local:
        con.execute(f"INSERT INTO run_exclusion_counts SELECT {rid}, {columns} FROM ({counts}) c")
        return
    with registered(con, backend.fetch(counts), "counts") as rows:
        con.execute(f"INSERT INTO run_exclusion_counts SELECT {rid}, {columns} FROM {rows}")


def default_started_by() -> str:
    """Who starts a run when nobody is named: the OS user, as ``cli:<user>`` (CONTRACT `settle run --by`)."""
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "cli:" + os.environ.get("USER", "unknown")


def run_settlement(con: duckdb.DuckDBPyConnection, year: int, *, params,
                   started_by: str | None = None, backend: backends.Backend | None = None) -> ledger.RunResult:
    """Settle one year: compute the targets (P9–P12), append the deltas (P13), store why (P12).
    ``started_by`` is recorded on the run (four eyes: its approver must be someone else). ``backend`` runs
    the trade-level SQL (default: ``SETTLE_BACKEND``, see settlement.backends); every result is the same."""
    started_by = started_by or default_started_by()
    started_at = datetime.now(timezone.utc)
    fingerprint = inputs_fingerprint(con, year, params_hash=params.sha256)
    previous = con.execute(
        "SELECT run_id, inputs_fingerprint FROM settlement_runs WHERE year = ? ORDER BY run_id DESC LIMIT 1", [year]
    ).fetchall()
    if previous and previous[0][1] == fingerprint:
        # Same inputs as the year's last run: same targets (P13: appends nothing unless the ledger moved);
        # its exclusions / explanations stay valid (view run_explanation_source), nothing is recomputed.
        return _rerun_unchanged(con, year, previous[0][0], fingerprint, params.sha256, started_at, started_by)
    backend = backend or backends.from_env(con)
    with clauses.staged_targets(con, year, params=params, backend=backend) as targets:
        # One transaction: the run, its entries (P13) and its exclusions/explanations (P12) land together.
        # The ledger serialises concurrent runs (its head row); a loser is retried once from fresh state.
        for attempt in (1, 2):
            con.execute("BEGIN TRANSACTION")
            try:
                result = ledger.append_run(
                    con,
                    year=year,
                    targets=targets.targets,
                    params_hash=params.sha256,
                    inputs_fingerprint=fingerprint,
                    engine_version=ENGINE_VERSION,
                    started_at=started_at,
                    within_transaction=True,
                    started_by=started_by,
                )
                store_run_results(con, result.run_id, targets)
                compute_flags(con, year, result.run_id, params=params)  # issue 13: signals, never amounts
                con.execute("COMMIT")
                return result
            except (ledger.LedgerConflict, duckdb.TransactionException):
                _rollback(con)
                if attempt == 2:
                    raise
            except BaseException:
                _rollback(con)
                raise
    raise AssertionError("unreachable")


def _rerun_unchanged(con, year: int, previous_run: int, fingerprint: str, params_hash: str,
                     started_at: datetime, started_by: str) -> ledger.RunResult:
    targets = con.sql(
        "SELECT CAST(clause AS BIGINT) AS clause, beneficiary_id, dataset_id, amount FROM run_targets "
        "WHERE run_id = ? ORDER BY ALL", params=[previous_run]
    ).pl().cast(clauses.TARGET_SCHEMA)
    return ledger.append_run(con, year=year, targets=targets, params_hash=params_hash,
                             inputs_fingerprint=fingerprint, engine_version=ENGINE_VERSION, started_at=started_at,
                             started_by=started_by)


def explanation_run(con: duckdb.DuckDBPyConnection, run_id: int) -> int:
    """The run whose stored exclusions / explanations describe ``run_id`` (see run_explanation_source)."""
    rows = con.execute("SELECT source_run_id FROM run_explanation_source WHERE run_id = ?", [run_id]).fetchall()
    return int(rows[0][0]) if rows else run_id


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:  # COMMIT already failed and ended the transaction
        pass


def years_to_settle(con: duckdb.DuckDBPyConnection, *, params) -> list[int]:
    """Every year with in-scope live sales or with ledger entries (CONTRACT `settle run`): a retraction
    that empties a year must still claw it back."""
    rows = con.execute("""
        SELECT DISTINCT year(local_date) AS y FROM trades WHERE kind = 'sale' AND NOT retracted
        UNION SELECT DISTINCT year FROM ledger_entries
        ORDER BY 1
    """).fetchall()
    years = []
    for (y,) in rows:
        days = params.in_scope_days(int(y))
        has_entries = con.execute("SELECT count(*) FROM ledger_entries WHERE year = ?", [y]).fetchall()[0][0]
        if has_entries:
            years.append(int(y))
            continue
        if days is None:
            continue
        in_scope = con.execute(
            "SELECT count(*) FROM trades WHERE kind = 'sale' AND NOT retracted AND local_date BETWEEN ? AND ?",
            [days[0], days[1]],
        ).fetchall()[0][0]
        if in_scope:
            years.append(int(y))
    return years


def year_needs_no_run(con: duckdb.DuckDBPyConnection, year: int, *, params) -> bool:
    """True when ``year`` has no in-scope day (P2) and no ledger entries: a run could neither pay nor claw
    back anything, so none is recorded (`settle run --year` says so instead)."""
    if params.in_scope_days(year) is not None:
        return False
    return not con.execute("SELECT count(*) FROM ledger_entries WHERE year = ?", [year]).fetchall()[0][0]


def settle_all(con: duckdb.DuckDBPyConnection, *, params, started_by: str | None = None,
               backend: backends.Backend | None = None) -> list[ledger.RunResult]:
    """Settle every year per CONTRACT, oldest first."""
    return [run_settlement(con, y, params=params, started_by=started_by, backend=backend)
            for y in years_to_settle(con, params=params)]


@dataclass(frozen=True)
class Settled:
    """What `settle run [--year Y]` and `POST /v1/settlements` did: the runs, or, for a year with no in-scope day
    and no ledger entries, no run and the (start, end) of the policy window it falls outside of (P2)."""

    runs: list[ledger.RunResult]
    outside_window: tuple[str, str] | None = None


def settle_years(con: duckdb.DuckDBPyConnection, year: int | None, *, params,
                 started_by: str | None = None) -> Settled:
    """Settle ``year``, or every year per CONTRACT when None; a year outside the window records no run."""
    if year is None:
        return Settled(settle_all(con, params=params, started_by=started_by))
    if year_needs_no_run(con, year, params=params):  # the window as the latest parameters define it
        return Settled([], (str(params.latest_value("window.start")), str(params.latest_value("window.end"))))
    return Settled([run_settlement(con, year, params=params, started_by=started_by)])
