"""Appending a settlement run to the ledger (P13): the deltas that bring every key to its target.

Owns the writes to ``settlement_runs``, ``run_targets``, ``ledger_entries`` and the one-row
``ledger_head`` (migration 0003). A run hands in the target payable per key (year, clause,
beneficiary_id, dataset_id); the ledger appends target − Σ entries for every key whose balance differs,
never updating or deleting an entry, and chains each entry's hash to the one before it.

Keys: clause 7 keys store ``dataset_id = ''`` (empty string, never NULL), so keys compare with plain
equality; payouts print it as an empty field (CONTRACT).

Must not import ``api``, ``settlement.cli`` or the clause code: the ledger does not know how targets
were computed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import duckdb
import polars as pl

from ledgers.chain import KEY_COLUMNS, Entry, InvalidTargets, LedgerConflict, RunResult, canonical_sql, chain_hash
from ledgers.chain import quietly as _quietly
from ledgers.runchain import seal_run
from settlement.core.sql import render, temp_tables

# Runs whose entries are void (CONTRACT "Settlement lifecycle"): a reject record of ledgers.events names them.
REJECTED_RUNS = "(SELECT run_id FROM lifecycle_events WHERE kind = 'reject')"


# One process-level lock: runs of this process append one at a time (threads with con.cursor()).
# Across connections the ledger_head row does the same: both transactions update it, DuckDB lets only
# one commit (write-write conflict), and the loser retries from fresh state
# (a few times, with a short back-off, then LedgerConflict).
# Re-entrant, so a caller may hold it across its own BEGIN..COMMIT (``serialised``) and still call append_run.
_APPEND_LOCK = threading.RLock()
# Retries after a write-write conflict on ledger_head (other connection), each from fresh state.
CONFLICT_ATTEMPTS = 5


@contextmanager
def serialised() -> Iterator[None]:
    """Hold the ledger's process lock around a caller's own transaction that uses
    ``append_run(..., within_transaction=True)``: BEGIN, append, store more rows, COMMIT — all inside
    ``with serialised():``. Other threads' runs then wait instead of conflicting on ledger_head."""
    with _APPEND_LOCK:
        yield



def _check_targets_frame(targets: pl.DataFrame) -> None:
    missing = [c for c in (*KEY_COLUMNS, "amount") if c not in targets.columns]
    if missing:
        raise InvalidTargets(f"targets lack columns {missing}")
    dtype = targets.schema["amount"]
    # P1: exact money only. A Decimal with more than 2 places would be rounded silently by the cast.
    if not isinstance(dtype, pl.Decimal) or (dtype.scale or 0) > 2:
        raise InvalidTargets(f"targets.amount must be a Decimal with at most 2 places (P1), got {dtype}")


_TARGET_PROBLEMS_SQL = """
SELECT 'bad clause ' || coalesce(CAST(clause AS VARCHAR), 'NULL') FROM {t} WHERE clause IS NULL OR clause NOT IN (6, 7)
UNION ALL SELECT 'empty beneficiary_id' FROM {t} WHERE beneficiary_id IS NULL OR beneficiary_id = ''
UNION ALL SELECT 'clause 6 key without dataset_id for ' || beneficiary_id FROM {t} WHERE clause = 6 AND dataset_id = ''
UNION ALL SELECT 'clause 7 key with dataset_id ' || dataset_id FROM {t} WHERE clause = 7 AND dataset_id <> ''
UNION ALL SELECT 'negative or NULL amount for ' || beneficiary_id || '/' || dataset_id FROM {t} WHERE amount IS NULL OR amount < 0
UNION ALL SELECT 'duplicate key ' || CAST(clause AS VARCHAR) || '/' || beneficiary_id || '/' || dataset_id
    FROM {t} GROUP BY clause, beneficiary_id, dataset_id HAVING count(*) > 1
LIMIT 5
"""


def append_run(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    targets: pl.DataFrame,
    params_hash: str,
    inputs_fingerprint: str,
    engine_version: str,
    started_at: dt.datetime,
    within_transaction: bool = False,
    started_by: str | None = None,
) -> RunResult:
    """Record one settlement run of ``year`` and append the deltas that bring every key to its target (P13).

    targets: columns clause (6|7), beneficiary_id, dataset_id ('' or null for clause 7), amount (Decimal,
    ≤ 2 places, ≥ 0). A key of ``year`` in the ledger but absent from targets has target 0 (claw-back).
    All in one transaction: the run row, its targets, the entries (first for a key 'accrual', later
    'adjustment'), the chain head. Unchanged inputs → no entry, but the run is still recorded.
    Entries of rejected runs are void: the balance a delta is taken against is Σ entries of the key's
    runs not rejected (the entitlement), so the run after a rejection proposes again.

    started_by: who started the run (recorded on settlement_runs; the approver must be someone else).

    within_transaction: the caller already ran BEGIN on ``con`` and will COMMIT (to store more rows
    atomically with the run); then a conflict raises LedgerConflict and the caller must roll back.
    """
    _check_targets_frame(targets)
    if started_at.tzinfo is None:
        raise ValueError("started_at must be timezone-aware (UTC instant)")
    view = f"_ledger_targets_{uuid.uuid4().hex}"
    con.register(view, targets)
    try:
        normalized = (
            f"SELECT CAST(clause AS INTEGER) AS clause, CAST(beneficiary_id AS VARCHAR) AS beneficiary_id, "
            f"CAST(coalesce(dataset_id, '') AS VARCHAR) AS dataset_id, CAST(amount AS DECIMAL(18,2)) AS amount "
            f"FROM {view}"
        )
        problems = con.execute(render(_TARGET_PROBLEMS_SQL, {"t": f"({normalized})"})).fetchall()
        if problems:
            raise InvalidTargets("; ".join(p[0] for p in problems))
        args = dict(year=year, normalized=normalized, params_hash=params_hash,
                    inputs_fingerprint=inputs_fingerprint, engine_version=engine_version, started_at=started_at,
                    started_by=started_by)
        with _APPEND_LOCK:
            if within_transaction:
                try:
                    return _append_in_transaction(con, **args)
                except duckdb.TransactionException as exc:
                    raise LedgerConflict(f"ledger run for {year} conflicted with a concurrent run: {exc}") from exc
            for attempt in range(1, CONFLICT_ATTEMPTS + 1):
                con.execute("BEGIN TRANSACTION")
                try:
                    result = _append_in_transaction(con, **args)
                    con.execute("COMMIT")
                    return result
                except duckdb.TransactionException as exc:
                    # A failed COMMIT has already ended the transaction: roll back quietly.
                    _quietly(lambda: con.execute("ROLLBACK"))
                    if attempt == CONFLICT_ATTEMPTS:
                        raise LedgerConflict(
                            f"ledger run for {year} conflicted {attempt} times with concurrent runs; "
                            f"nothing appended: {exc}"
                        ) from exc
                    # Another connection holds or just moved the head: wait for it, then start from fresh state.
                    time.sleep(0.02 * 2**attempt)
                except BaseException:
                    _quietly(lambda: con.execute("ROLLBACK"))
                    raise
            raise AssertionError("unreachable")
    finally:
        _quietly(lambda: con.unregister(view))




def _append_in_transaction(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    normalized: str,
    params_hash: str,
    inputs_fingerprint: str,
    engine_version: str,
    started_at: dt.datetime,
    started_by: str | None,
) -> RunResult:
    now = dt.datetime.now(dt.timezone.utc)
    run_id, last_entry_id, last_hash = _claim_head(con, now)
    con.execute(
        f"INSERT INTO run_targets SELECT ?, ?, clause, beneficiary_id, dataset_id, amount FROM ({normalized})",
        [run_id, year],
    )
    targets_count = con.execute("SELECT count(*) FROM run_targets WHERE run_id = ?", [run_id]).fetchall()[0][0]
    with temp_tables(con, "ledger_delta") as t:  # this run's own name, dropped whatever happens
        delta = t["ledger_delta"]
        _stage_deltas(con, delta, year=year, run_id=run_id, last_entry_id=last_entry_id, now=now,
                      fingerprint=inputs_fingerprint)
        entries = _chain_and_insert(con, delta, run_id=run_id, year=year, now=now,
                                    fingerprint=inputs_fingerprint, last_hash=last_hash)

    head_entry_id = entries[-1].entry_id if entries else last_entry_id
    head_hash = entries[-1].hash if entries else last_hash
    con.execute(
        "INSERT INTO settlement_runs (run_id, year, started_at, finished_at, params_hash, inputs_fingerprint, "
        "engine_version, targets_count, entries_appended, head_entry_id, head_hash, started_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, year, started_at, now, params_hash, inputs_fingerprint, engine_version, targets_count,
         len(entries), head_entry_id, head_hash, started_by],
    )
    seal_run(con, run_id)  # its input digests, targets and row, chained to the run before (issue 15)
    con.execute("UPDATE ledger_head SET last_entry_id = ?, last_hash = ?", [head_entry_id, head_hash])
    return RunResult(run_id=run_id, year=year, appended=tuple(entries), targets_count=targets_count)


def _claim_head(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> tuple[int, int, str]:
    """Claim the head first: a concurrent run updating the same row conflicts here or at COMMIT."""
    head = con.execute(
        "UPDATE ledger_head SET last_run_id = last_run_id + 1, updated_at = ? "
        "RETURNING last_run_id, last_entry_id, last_hash",
        [now],
    ).fetchall()
    if len(head) != 1:
        raise RuntimeError(f"ledger_head must have exactly one row, has {len(head)}")
    return head[0]


def _stage_deltas(con, delta: str, *, year: int, run_id: int, last_entry_id: int, now: dt.datetime,
                  fingerprint: str) -> None:
    """P13, set-based: delta = target − Σ entries per key of the year of the runs not rejected (void entries
    do not count); keys absent from targets → 0. A key's first entry ever (rejected ones included) is the
    accrual, every later one an adjustment."""
    con.execute(
        f"""
        CREATE TEMP TABLE {delta} AS
        WITH cur AS (
            SELECT clause, beneficiary_id, dataset_id,
                   coalesce(sum(amount) FILTER (WHERE run_id NOT IN (SELECT run_id FROM {REJECTED_RUNS})), 0)
                       AS balance
            FROM ledger_entries WHERE year = $year GROUP BY clause, beneficiary_id, dataset_id
        ), tgt AS (
            SELECT clause, beneficiary_id, dataset_id, amount FROM run_targets WHERE run_id = $run_id
        ), d AS (
            SELECT coalesce(t.clause, c.clause) AS clause,
                   coalesce(t.beneficiary_id, c.beneficiary_id) AS beneficiary_id,
                   coalesce(t.dataset_id, c.dataset_id) AS dataset_id,
                   CAST(coalesce(t.amount, 0) - coalesce(c.balance, 0) AS DECIMAL(18,2)) AS amount,
                   CASE WHEN c.balance IS NULL THEN 'accrual' ELSE 'adjustment' END AS kind
            FROM tgt t FULL OUTER JOIN cur c
              ON t.clause = c.clause AND t.beneficiary_id = c.beneficiary_id AND t.dataset_id = c.dataset_id
        ), numbered AS (
            SELECT $last_entry_id + row_number() OVER (ORDER BY clause, beneficiary_id, dataset_id) AS entry_id,
                   $run_id AS run_id, CAST($year AS INTEGER) AS year, clause, beneficiary_id, dataset_id,
                   amount, kind, CAST($now AS TIMESTAMPTZ) AS created_at,
                   CAST($fp AS VARCHAR) AS inputs_fingerprint
            FROM d WHERE amount <> 0
        )
        SELECT *, {canonical_sql()} AS canonical FROM numbered
        """,
        dict(year=year, run_id=run_id, last_entry_id=last_entry_id, now=now, fp=fingerprint),
    )


def _chain_and_insert(con, delta: str, *, run_id: int, year: int, now: dt.datetime, fingerprint: str,
                      last_hash: str) -> list[Entry]:
    """Chain the staged deltas' hashes after ``last_hash`` and insert them as ledger entries."""
    # Arrow, not fetchall: converting 100k Decimal/timestamp rows to Python objects one by one is slow.
    new = con.sql(
        f"SELECT entry_id, canonical, clause, beneficiary_id, dataset_id, amount, kind FROM {delta} ORDER BY entry_id"
    ).pl()
    # The chain: a loop over the appended ledger entries (not trades), each linked to the one before.
    prev = last_hash
    hashes_list: list[str] = []
    prevs: list[str] = []
    for canonical in new["canonical"].to_list():
        prevs.append(prev)
        prev = chain_hash(canonical, prev)
        hashes_list.append(prev)
    cols = [new[c].to_list() for c in ("entry_id", "clause", "beneficiary_id", "dataset_id", "amount", "kind")]
    entries = [
        Entry(entry_id, run_id, year, clause, beneficiary_id, dataset_id, amount, kind, now, fingerprint, p, h)
        for entry_id, clause, beneficiary_id, dataset_id, amount, kind, p, h in zip(*cols, prevs, hashes_list)
    ]
    if not entries:
        return entries
    hashes = pl.DataFrame(
        {"entry_id": new["entry_id"], "prev_hash": prevs, "hash": hashes_list},
        schema={"entry_id": pl.Int64, "prev_hash": pl.String, "hash": pl.String},
    )
    hview = f"_ledger_hashes_{uuid.uuid4().hex}"
    con.register(hview, hashes)
    try:
        con.execute(
            f"""
            INSERT INTO ledger_entries
                (entry_id, run_id, year, clause, beneficiary_id, dataset_id, amount, kind, created_at,
                 inputs_fingerprint, prev_hash, hash)
            SELECT d.entry_id, d.run_id, d.year, d.clause, d.beneficiary_id, d.dataset_id, d.amount,
                   d.kind, d.created_at, d.inputs_fingerprint, h.prev_hash, h.hash
            FROM {delta} d JOIN {hview} h USING (entry_id)
            """
        )
    finally:
        _quietly(lambda: con.unregister(hview))
    # Guard against a Python/SQL mismatch of the canonical text: recompute the new hashes in SQL.
    mismatched = con.execute(
        f"SELECT count(*) FROM ledger_entries e WHERE e.run_id = ? "
        f"AND sha256({canonical_sql('e')} || '|' || e.prev_hash) <> e.hash",
        [run_id],
    ).fetchall()[0][0]
    if mismatched:
        raise RuntimeError(f"ledger hash mismatch on {mismatched} new entries (bug in canonical text)")
    return entries
