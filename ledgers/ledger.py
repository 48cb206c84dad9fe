"""The append-only, hash-chained settlement ledger (P13).

Owns the tables of migration 0003: ``settlement_runs``, ``run_targets``, ``ledger_entries`` and the
one-row ``ledger_head``. A run hands in the target payable per key (year, clause, beneficiary_id,
dataset_id); the ledger appends target − Σ entries for every key whose balance differs, never updating or
deleting an entry, and chains each entry's hash to the one before it so history cannot be rewritten
unnoticed. ``verify`` recomputes the chain and re-derives every key's balance from the runs' targets.

Keys: clause 7 keys store ``dataset_id = ''`` (empty string, never NULL), so keys compare with plain
equality; payouts print it as an empty field (CONTRACT).

Must not import ``api``, ``settlement.cli`` or the clause code: the ledger does not know how targets
were computed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

import duckdb
import polars as pl

GENESIS_HASH = "0" * 64
KINDS = ("accrual", "adjustment")
KEY_COLUMNS = ("clause", "beneficiary_id", "dataset_id")

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


def canonical_sql(alias: str = "") -> str:
    """SQL text of an entry's canonical form, the input of its hash (with ``'|' || prev_hash``).

    Version-tagged; text fields are length-prefixed (bytes) so no field value can imitate a separator;
    amount is the DECIMAL(18,2) text (e.g. ``-5.00``); created_at is microseconds since the Unix epoch
    (independent of the session time zone). The same expression computes the hash when appending and
    when verifying, so both sides agree by construction; docs/architecture.md spells it out for outside
    verifiers.
    """
    p = f"{alias}." if alias else ""

    def text(col: str) -> str:
        return f"CAST(strlen({p}{col}) AS VARCHAR) || ':' || {p}{col}"

    return (
        "concat_ws('|', 'ledger-v1', "
        f"CAST({p}entry_id AS VARCHAR), CAST({p}run_id AS VARCHAR), CAST({p}year AS VARCHAR), "
        f"CAST({p}clause AS VARCHAR), {text('beneficiary_id')}, {text('dataset_id')}, "
        f"CAST(CAST({p}amount AS DECIMAL(18,2)) AS VARCHAR), {p}kind, "
        f"CAST(epoch_us({p}created_at) AS VARCHAR), {text('inputs_fingerprint')})"
    )


def chain_hash(canonical: str, prev_hash: str) -> str:
    """sha256 hex of ``canonical || '|' || prev_hash`` (UTF-8): DuckDB's sha256() of the same text."""
    return hashlib.sha256(f"{canonical}|{prev_hash}".encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    entry_id: int
    run_id: int
    year: int
    clause: int
    beneficiary_id: str
    dataset_id: str  # '' for clause 7
    amount: Decimal
    kind: str  # 'accrual' | 'adjustment'
    created_at: dt.datetime
    inputs_fingerprint: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class RunResult:
    run_id: int
    year: int
    appended: tuple[Entry, ...]
    targets_count: int = 0

    @property
    def total_appended(self) -> Decimal:
        return sum((e.amount for e in self.appended), Decimal("0.00"))


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries_checked: int
    first_bad_entry_id: int | None
    message: str
    runs_checked: int = 0


class LedgerConflict(RuntimeError):
    """Another run of the ledger committed first, twice in a row: nothing was appended; run again."""


class InvalidTargets(ValueError):
    """The targets handed to append_run break the ledger's input rules (a bug in the caller)."""


# ---------------------------------------------------------------------------------------------- append


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
) -> RunResult:
    """Record one settlement run of ``year`` and append the deltas that bring every key to its target (P13).

    targets: columns clause (6|7), beneficiary_id, dataset_id ('' or null for clause 7), amount (Decimal,
    ≤ 2 places, ≥ 0). A key of ``year`` in the ledger but absent from targets has target 0 (claw-back).
    All in one transaction: the run row, its targets, the entries (first for a key 'accrual', later
    'adjustment'), the chain head. Unchanged inputs → no entry, but the run is still recorded.

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
        problems = con.execute(_TARGET_PROBLEMS_SQL.format(t=f"({normalized})")).fetchall()
        if problems:
            raise InvalidTargets("; ".join(p[0] for p in problems))
        args = dict(year=year, normalized=normalized, params_hash=params_hash,
                    inputs_fingerprint=inputs_fingerprint, engine_version=engine_version, started_at=started_at)
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


def _quietly(cleanup) -> None:
    # Cleanup after a failed (aborted) transaction must not mask the real error; the rollback undoes it.
    try:
        cleanup()
    except duckdb.Error:
        pass


def _append_in_transaction(
    con: duckdb.DuckDBPyConnection,
    *,
    year: int,
    normalized: str,
    params_hash: str,
    inputs_fingerprint: str,
    engine_version: str,
    started_at: dt.datetime,
) -> RunResult:
    now = dt.datetime.now(dt.timezone.utc)
    # Claim the head first: a concurrent run updating the same row conflicts here or at COMMIT.
    head = con.execute(
        "UPDATE ledger_head SET last_run_id = last_run_id + 1, updated_at = ? "
        "RETURNING last_run_id, last_entry_id, last_hash",
        [now],
    ).fetchall()
    if len(head) != 1:
        raise RuntimeError(f"ledger_head must have exactly one row, has {len(head)}")
    run_id, last_entry_id, last_hash = head[0]

    con.execute(
        f"INSERT INTO run_targets SELECT ?, ?, clause, beneficiary_id, dataset_id, amount FROM ({normalized})",
        [run_id, year],
    )
    targets_count = con.execute("SELECT count(*) FROM run_targets WHERE run_id = ?", [run_id]).fetchall()[0][0]

    # P13, set-based: delta = target − Σ entries per key of the year; keys absent from targets → 0.
    delta = f"_ledger_delta_{uuid.uuid4().hex}"
    con.execute(
        f"""
        CREATE TEMP TABLE {delta} AS
        WITH cur AS (
            SELECT clause, beneficiary_id, dataset_id, sum(amount) AS balance
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
        dict(year=year, run_id=run_id, last_entry_id=last_entry_id, now=now, fp=inputs_fingerprint),
    )
    try:
        # Arrow, not fetchall: converting 100k Decimal/timestamp rows to Python objects one by one is slow.
        new = con.sql(
            f"SELECT entry_id, canonical, clause, beneficiary_id, dataset_id, amount, kind "
            f"FROM {delta} ORDER BY entry_id"
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
            Entry(entry_id, run_id, year, clause, beneficiary_id, dataset_id, amount, kind, now, inputs_fingerprint,
                  p, h)
            for entry_id, clause, beneficiary_id, dataset_id, amount, kind, p, h in zip(*cols, prevs, hashes_list)
        ]
        if entries:
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
    finally:
        _quietly(lambda: con.execute(f"DROP TABLE IF EXISTS {delta}"))

    head_entry_id = entries[-1].entry_id if entries else last_entry_id
    head_hash = entries[-1].hash if entries else last_hash
    con.execute(
        "INSERT INTO settlement_runs (run_id, year, started_at, finished_at, params_hash, inputs_fingerprint, "
        "engine_version, targets_count, entries_appended, head_entry_id, head_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [run_id, year, started_at, now, params_hash, inputs_fingerprint, engine_version, targets_count,
         len(entries), head_entry_id, head_hash],
    )
    con.execute("UPDATE ledger_head SET last_entry_id = ?, last_hash = ?", [head_entry_id, head_hash])
    return RunResult(run_id=run_id, year=year, appended=tuple(entries), targets_count=targets_count)


# ---------------------------------------------------------------------------------------------- verify

# Each check returns (entry_id or NULL, message) rows, the first (lowest entry) is reported.
_CHAIN_SQL = f"""
WITH e AS (
    SELECT entry_id, run_id, year, clause, kind, amount, prev_hash, hash,
           sha256({canonical_sql()} || '|' || prev_hash) AS recomputed,
           lag(entry_id) OVER (ORDER BY entry_id) AS prev_id,
           coalesce(lag(hash) OVER (ORDER BY entry_id), '{GENESIS_HASH}') AS expected_prev,
           row_number() OVER (PARTITION BY year, clause, beneficiary_id, dataset_id ORDER BY entry_id) AS key_seq
    FROM ledger_entries
), r AS (SELECT run_id, year FROM settlement_runs)
SELECT entry_id, msg FROM (
    SELECT coalesce(prev_id, 0) + 1 AS entry_id,
           'entry ' || (coalesce(prev_id, 0) + 1) || ' is missing: entry ' || e.entry_id || ' follows '
           || CASE WHEN prev_id IS NULL THEN 'the start of the ledger' ELSE 'entry ' || prev_id END AS msg, 0 AS k
    FROM e WHERE e.entry_id <> coalesce(prev_id, 0) + 1
    UNION ALL
    SELECT entry_id, 'entry ' || entry_id || ': stored hash does not match its contents (altered in place?)', 1
    FROM e WHERE recomputed <> hash
    UNION ALL
    SELECT entry_id, 'entry ' || entry_id || ': prev_hash does not link to the hash of the entry before', 2
    FROM e WHERE prev_hash <> expected_prev
    UNION ALL
    SELECT entry_id, 'entry ' || entry_id || ': amount is zero or kind ' || kind || ' is wrong for its place', 3
    FROM e WHERE amount = 0 OR kind <> CASE WHEN key_seq = 1 THEN 'accrual' ELSE 'adjustment' END
    UNION ALL
    SELECT e.entry_id, 'entry ' || e.entry_id || ': run ' || e.run_id || ' of year ' || e.year || ' is not a recorded run', 4
    FROM e LEFT JOIN r ON r.run_id = e.run_id AND r.year = e.year WHERE r.run_id IS NULL OR e.clause NOT IN (6, 7)
)
ORDER BY entry_id, k
LIMIT 1
"""

# Head and per-run accounting: catches a deleted or appended tail and runs whose entries were removed.
_HEAD_SQL = f"""
WITH last AS (SELECT entry_id, hash FROM ledger_entries ORDER BY entry_id DESC LIMIT 1),
h AS (SELECT last_run_id, last_entry_id, last_hash FROM ledger_head),
per_run AS (SELECT run_id, count(*) AS n FROM ledger_entries GROUP BY run_id),
runs AS (SELECT run_id, lag(run_id) OVER (ORDER BY run_id) AS prev_run FROM settlement_runs)
SELECT entry_id, msg FROM (
    SELECT NULL AS entry_id, 'run ' || (coalesce(prev_run, 0) + 1) || ' is missing from settlement_runs' AS msg,
           -1 AS k
    FROM runs WHERE run_id <> coalesce(prev_run, 0) + 1
    UNION ALL
    SELECT NULL, 'ledger head names run ' || h.last_run_id || ' but the last recorded run is '
           || coalesce((SELECT CAST(max(run_id) AS VARCHAR) FROM settlement_runs), 'none'), -1
    FROM h WHERE h.last_run_id <> coalesce((SELECT max(run_id) FROM settlement_runs), 0)
    UNION ALL
    SELECT h.last_entry_id,
           'ledger head names entry ' || h.last_entry_id || ' but the last entry is '
           || coalesce(CAST(last.entry_id AS VARCHAR), 'none') || ' (entries deleted or added?)', 0
    FROM h LEFT JOIN last ON true
    WHERE h.last_entry_id <> coalesce(last.entry_id, 0) OR h.last_hash <> coalesce(last.hash, '{GENESIS_HASH}')
    UNION ALL
    SELECT s.head_entry_id, 'run ' || s.run_id || ' committed head entry ' || s.head_entry_id
           || ' whose hash differs now (history rewritten?)', 1
    FROM settlement_runs s LEFT JOIN ledger_entries e ON e.entry_id = s.head_entry_id
    WHERE coalesce(e.hash, '{GENESIS_HASH}') <> s.head_hash OR (s.head_entry_id > 0 AND e.entry_id IS NULL)
    UNION ALL
    SELECT NULL, 'run ' || s.run_id || ' recorded ' || s.entries_appended || ' entries, the ledger holds '
           || coalesce(p.n, 0), 2
    FROM settlement_runs s LEFT JOIN per_run p USING (run_id) WHERE s.entries_appended <> coalesce(p.n, 0)
    UNION ALL
    SELECT NULL, 'run ' || s.run_id || ' recorded ' || s.targets_count || ' targets, run_targets holds '
           || (SELECT count(*) FROM run_targets t WHERE t.run_id = s.run_id), 3
    FROM settlement_runs s WHERE s.targets_count <> (SELECT count(*) FROM run_targets t WHERE t.run_id = s.run_id)
)
ORDER BY entry_id NULLS LAST, k
LIMIT 1
"""

# Re-derivation (P13): after each run R of year Y, every key's balance (Σ entries with run_id ≤ R)
# equals R's recorded target, 0 when absent. Runs × keys of the year, with an as-of join to balances.
_DERIVE_SQL = """
WITH per AS (
    SELECT year, clause, beneficiary_id, dataset_id, run_id, sum(amount) AS amt, max(entry_id) AS last_entry
    FROM ledger_entries GROUP BY ALL
), bal AS (
    SELECT *, sum(amt) OVER (PARTITION BY year, clause, beneficiary_id, dataset_id ORDER BY run_id) AS balance
    FROM per
), tgt AS (
    SELECT t.run_id, s.year, t.clause, t.beneficiary_id, t.dataset_id, t.amount
    FROM run_targets t JOIN settlement_runs s ON s.run_id = t.run_id AND s.year = t.year
), keys AS (
    SELECT DISTINCT year, clause, beneficiary_id, dataset_id FROM per
    UNION SELECT DISTINCT year, clause, beneficiary_id, dataset_id FROM tgt
), grid AS (
    SELECT s.run_id, k.year, k.clause, k.beneficiary_id, k.dataset_id
    FROM settlement_runs s JOIN keys k ON k.year = s.year
), balances AS (
    SELECT g.*, coalesce(b.balance, 0) AS balance, b.last_entry
    FROM grid g ASOF LEFT JOIN bal b
      ON g.year = b.year AND g.clause = b.clause AND g.beneficiary_id = b.beneficiary_id
     AND g.dataset_id = b.dataset_id AND g.run_id >= b.run_id
)
SELECT a.last_entry,
       'after run ' || a.run_id || ' key ' || a.year || '/' || a.clause || '/' || a.beneficiary_id || '/'
       || a.dataset_id || ' sums to ' || CAST(a.balance AS VARCHAR) || ' but the run''s target is '
       || CAST(coalesce(t.amount, 0) AS VARCHAR) AS msg
FROM balances a LEFT JOIN tgt t
  ON t.run_id = a.run_id AND t.clause = a.clause AND t.beneficiary_id = a.beneficiary_id AND t.dataset_id = a.dataset_id
WHERE a.balance <> coalesce(t.amount, 0)
ORDER BY a.run_id, a.last_entry NULLS LAST
LIMIT 1
"""


def verify(con: duckdb.DuckDBPyConnection) -> VerifyResult:
    """Recompute every hash in entry order, check the prev_hash links, the head, the runs' accounting and
    re-derive every key's balance from the recorded targets. Names the first bad entry."""
    entries = con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0]
    runs = con.execute("SELECT count(*) FROM settlement_runs").fetchall()[0][0]
    for sql in (_CHAIN_SQL, _HEAD_SQL, _DERIVE_SQL):
        bad = con.execute(sql).fetchall()
        if bad:
            entry_id, message = bad[0]
            return VerifyResult(False, entries, entry_id, message, runs)
    return VerifyResult(True, entries, None, f"ok: {entries} entries in {runs} runs verified", runs)


# ---------------------------------------------------------------------------------------------- payouts

PAYOUT_COLUMNS = ("year", "clause", "beneficiary_id", "dataset_id", "amount")


def payouts(
    con: duckdb.DuckDBPyConnection, year: int | None = None, *, beneficiary_id: str | None = None
) -> pl.DataFrame:
    """One row per key with a non-zero Σ of entries, sorted by year, clause, beneficiary_id, dataset_id
    (CONTRACT "settle payouts"). amount is Decimal(18,2); dataset_id is '' for clause 7.

    ``beneficiary_id`` keeps one beneficiary's rows, filtered inside the query (the API's owner / operator
    view: 1.3 ms instead of 9.8 ms for all 20,000 keys then a filter, bench/bench_api.py)."""
    frame = con.sql(
        """
        SELECT CAST(year AS INTEGER) AS year, CAST(clause AS INTEGER) AS clause, beneficiary_id, dataset_id,
               CAST(sum(amount) AS DECIMAL(18,2)) AS amount
        FROM ledger_entries
        WHERE ($year IS NULL OR year = $year) AND ($beneficiary IS NULL OR beneficiary_id = $beneficiary)
        GROUP BY year, clause, beneficiary_id, dataset_id
        HAVING sum(amount) <> 0
        ORDER BY year, clause, beneficiary_id, dataset_id
        """,
        params=dict(year=year, beneficiary=beneficiary_id),
    ).pl()
    return frame.cast(
        {"year": pl.Int32, "clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
         "amount": pl.Decimal(18, 2)}
    )


def format_amount(amount: Decimal) -> str:
    """Exactly two decimals, no separators (CONTRACT): Decimal('1234.5') -> '1234.50'."""
    return f"{amount:.2f}"


def payouts_csv(df: pl.DataFrame) -> str:
    """The exact CSV of CONTRACT: header year,clause,beneficiary_id,dataset_id,amount; '\\n' line ends."""
    lines = [",".join(PAYOUT_COLUMNS)]
    for year, clause, beneficiary_id, dataset_id, amount in df.select(PAYOUT_COLUMNS).iter_rows():
        # Ids are credit codes / dataset ids; quote defensively if one ever holds a comma or quote.
        fields = [str(year), str(clause), _csv_field(beneficiary_id), _csv_field(dataset_id or ""),
                  format_amount(amount)]
        lines.append(",".join(fields))
    return "\n".join(lines) + "\n"


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def payouts_records(df: pl.DataFrame) -> list[dict]:
    """JSON-ready rows: amount as an exact string with two decimals (never a float)."""
    return [
        {"year": y, "clause": c, "beneficiary_id": b, "dataset_id": d or "", "amount": format_amount(a)}
        for y, c, b, d, a in df.select(PAYOUT_COLUMNS).iter_rows()
    ]


# ---------------------------------------------------------------------------------------------- export

EXPORT_FORMATS = ("csv", "parquet")

_EXPORT_SQL = """
SELECT entry_id, run_id, year, clause, beneficiary_id, dataset_id, amount, kind,
       strftime(make_timestamp(epoch_us(created_at)), '%Y-%m-%dT%H:%M:%S.%fZ') AS created_at,
       epoch_us(created_at) AS created_at_us, inputs_fingerprint, prev_hash, hash
FROM ledger_entries ORDER BY entry_id
"""


def export(con: duckdb.DuckDBPyConnection, fmt: str, out) -> int:
    """Write every ledger entry in chain order to ``out`` as csv or parquet. Returns the number of entries.

    amount keeps its exact DECIMAL(18,2) (CSV text ``-5.00``; Parquet decimal(18,2)); created_at is a UTC
    ISO text and created_at_us its epoch microseconds (the value hashed), so an outside verifier can
    recompute the chain from the export alone.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    rel = con.sql(_EXPORT_SQL)
    if fmt == "csv":
        rel.write_csv(str(out), header=True)
    else:
        rel.write_parquet(str(out))
    return con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0]


def verify_export(path) -> VerifyResult:
    """Re-verify the hash chain of a ``settle ledger export`` file alone, without the database (an outside
    auditor's check): ids 1..n, every hash recomputed from the documented canonical text, every prev_hash
    linked. Re-derivation needs the runs' targets and is left to ``verify``."""
    path = str(path)
    text_cols = ("beneficiary_id", "dataset_id", "amount", "kind", "inputs_fingerprint", "prev_hash", "hash")
    if path.endswith(".parquet"):
        df = pl.read_parquet(path).with_columns(pl.col("amount").cast(pl.String))
    else:  # CSV: keep amount as its exact text
        df = pl.read_csv(path, schema_overrides={c: pl.String for c in text_cols})
    df = df.with_columns(pl.col("dataset_id").fill_null(""), pl.col("beneficiary_id").fill_null("")).sort("entry_id")

    def t(s: str) -> str:
        return f"{len(s.encode('utf-8'))}:{s}"

    prev = GENESIS_HASH
    expected_id = 1
    for row in df.iter_rows(named=True):  # an audit of the exported entries, one by one in chain order
        entry_id = row["entry_id"]
        if entry_id != expected_id:
            return VerifyResult(False, expected_id - 1, expected_id, f"entry {expected_id} is missing from the export")
        amount = f"{Decimal(row['amount']):.2f}"
        canonical = "|".join(["ledger-v1", str(entry_id), str(row["run_id"]), str(row["year"]), str(row["clause"]),
                              t(row["beneficiary_id"]), t(row["dataset_id"]), amount, row["kind"],
                              str(row["created_at_us"]), t(row["inputs_fingerprint"])])
        if row["prev_hash"] != prev:
            return VerifyResult(False, entry_id - 1, entry_id,
                                f"entry {entry_id}: prev_hash does not link to the hash of the entry before")
        if chain_hash(canonical, prev) != row["hash"]:
            return VerifyResult(False, entry_id - 1, entry_id,
                                f"entry {entry_id}: stored hash does not match its contents (altered?)")
        prev = row["hash"]
        expected_id += 1
    n = df.height
    return VerifyResult(True, n, None, f"ok: {n} exported entries, chain intact (head {prev})")
