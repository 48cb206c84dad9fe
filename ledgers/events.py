"""The lifecycle records' chain: approvals, rejections, notices, objections, disbursements, payments.

Owns ``lifecycle_events`` (migration 0009) and the event columns of ``ledger_head``. Records are only
ever appended, each hash-chained to the record before, exactly like ledger entries (a second chain, so
a record's hash never depends on later entries and ``ledger_entries`` stays as it was). ``record``
claims the ledger head (so a record and a settlement run never interleave: a run's deltas see every
rejection recorded before it), lets the caller's ``build`` read the state and decide inside that
transaction (four eyes, "is the run proposed?" cannot race), then appends what it returned.

What the records mean is ``settlement.lifecycle``'s business; the ledger knows only that a ``reject``
record voids its run's entries (``ledgers.append``, ``ledgers.payouts``, ``ledgers.verify``).
Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

import duckdb

from ledgers.append import CONFLICT_ATTEMPTS, _APPEND_LOCK
from ledgers.chain import GENESIS_HASH, LedgerConflict, chain_hash, quietly

EVENT_KINDS = ("approve", "reject", "notice", "objection", "resolve", "disburse", "paid", "key")
EVENT_FIELDS = ("kind", "year", "run_id", "ref", "clause", "beneficiary_id", "dataset_id", "amount", "actor",
                "note", "run_started_by", "on_date", "until_date")


def canonical_event_sql(alias: str = "") -> str:
    """SQL text of a record's canonical form (the input of its hash with ``'|' || prev_hash``).

    ``event-v1|event_id|L:kind|year|run_id|L:ref|clause|L:beneficiary_id|L:dataset_id|amount|L:actor|L:note|
    L:run_started_by|on_date|until_date|head_run_id|created_at_us``: texts length-prefixed (``L:`` = UTF-8
    byte length and ``:``), a NULL field is ``-`` (never the form of a text), amount the DECIMAL(18,2)
    text, dates ISO, created_at microseconds since the Unix epoch."""
    p = f"{alias}." if alias else ""

    def text(col: str) -> str:
        return f"coalesce(CAST(strlen({p}{col}) AS VARCHAR) || ':' || {p}{col}, '-')"

    def value(expr: str) -> str:
        return f"coalesce(CAST({expr} AS VARCHAR), '-')"

    return (
        f"concat_ws('|', 'event-v1', {value(p + 'event_id')}, {text('kind')}, {value(p + 'year')}, "
        f"{value(p + 'run_id')}, {text('ref')}, {value(p + 'clause')}, {text('beneficiary_id')}, "
        f"{text('dataset_id')}, {value(f'CAST({p}amount AS DECIMAL(18,2))')}, {text('actor')}, {text('note')}, "
        f"{text('run_started_by')}, {value(p + 'on_date')}, {value(p + 'until_date')}, {value(p + 'head_run_id')}, "
        f"{value(f'epoch_us({p}created_at)')})"
    )


Build = Callable[[duckdb.DuckDBPyConnection], list[dict[str, Any]]]


def record(con: duckdb.DuckDBPyConnection, build: Build) -> list[int]:
    """Append the records ``build(con)`` returns, in one transaction that holds the ledger head.

    ``build`` runs inside that transaction: it reads the state, raises (a ``UserError``) to refuse, or
    returns a list of dicts with keys from ``EVENT_FIELDS`` (missing ones are NULL). Returns the new
    event ids (none when ``build`` returned nothing). Retries from fresh state after a write-write conflict
    with another connection, then raises ``LedgerConflict``."""
    with _APPEND_LOCK:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            con.execute("BEGIN TRANSACTION")
            try:
                ids = _record_in_transaction(con, build)
                con.execute("COMMIT")
                return ids
            except duckdb.TransactionException as exc:
                quietly(lambda: con.execute("ROLLBACK"))
                if attempt == CONFLICT_ATTEMPTS:
                    raise LedgerConflict(f"lifecycle record conflicted {attempt} times; nothing recorded: {exc}") \
                        from exc
                time.sleep(0.02 * 2**attempt)
            except BaseException:
                quietly(lambda: con.execute("ROLLBACK"))
                raise
    raise AssertionError("unreachable")


_TYPED_ROW = (
    "SELECT CAST(? AS BIGINT) AS event_id, CAST(? AS VARCHAR) AS kind, CAST(? AS INTEGER) AS year, "
    "CAST(? AS BIGINT) AS run_id, CAST(? AS VARCHAR) AS ref, CAST(? AS INTEGER) AS clause, "
    "CAST(? AS VARCHAR) AS beneficiary_id, CAST(? AS VARCHAR) AS dataset_id, CAST(? AS DECIMAL(18,2)) AS amount, "
    "CAST(? AS VARCHAR) AS actor, CAST(? AS VARCHAR) AS note, CAST(? AS VARCHAR) AS run_started_by, "
    "CAST(? AS DATE) AS on_date, CAST(? AS DATE) AS until_date, CAST(? AS BIGINT) AS head_run_id, "
    "CAST(? AS TIMESTAMPTZ) AS created_at, CAST(? AS VARCHAR) AS prev_hash, CAST(? AS VARCHAR) AS hash"
)


_COLUMNS = ", ".join(("event_id", *EVENT_FIELDS, "head_run_id", "created_at", "prev_hash", "hash"))


def _record_in_transaction(con: duckdb.DuckDBPyConnection, build: Build) -> list[int]:
    now = dt.datetime.now(dt.timezone.utc)
    head = con.execute(
        "UPDATE ledger_head SET updated_at = ? RETURNING last_run_id, last_event_id, last_event_hash", [now]
    ).fetchall()
    if len(head) != 1:
        raise RuntimeError(f"ledger_head must have exactly one row, has {len(head)}")
    head_run_id, last_id, last_hash = head[0]
    rows = build(con)
    prev = last_hash or GENESIS_HASH
    ids: list[int] = []
    for i, row in enumerate(rows, start=1):
        unknown = set(row) - set(EVENT_FIELDS) - {"signature"}
        if unknown or row.get("kind") not in EVENT_KINDS:
            raise ValueError(f"bad lifecycle record {row!r}")
        values = [last_id + i] + [row.get(f) for f in EVENT_FIELDS] + [head_run_id, now]
        # the canonical text of the row as it will be stored (same column types), then the row with its hash
        canonical = con.execute(f"SELECT {canonical_event_sql()} FROM ({_TYPED_ROW})",
                                values + [prev, ""]).fetchall()[0][0]
        prev_hash, prev = prev, chain_hash(canonical, prev)
        con.execute(f"INSERT INTO lifecycle_events ({_COLUMNS}) {_TYPED_ROW}", values + [prev_hash, prev])
        if row.get("signature"):  # an approval's Ed25519 signature (ledgers.signatures), checked by verify
            con.execute("UPDATE lifecycle_events SET signature = ? WHERE event_id = ?", [row["signature"], last_id + i])
        ids.append(last_id + i)
    if ids:
        con.execute("UPDATE ledger_head SET last_event_id = ?, last_event_hash = ?", [ids[-1], prev])
    return ids


# ---------------------------------------------------------------------------------------------- verify

def event_name(alias: str = "") -> str:
    """SQL naming a record in messages: ``lifecycle event 7 (approve of run 3)``."""
    p = f"{alias}." if alias else ""
    return (f"'lifecycle event ' || {p}event_id || ' (' || {p}kind || coalesce(' of run ' || {p}run_id, '') "
            f"|| coalesce(' ' || {p}ref, '') || ')'")


_EVENT_NAME = event_name()

EVENTS_CHAIN_SQL = f"""
WITH e AS (
    SELECT *, sha256({canonical_event_sql()} || '|' || prev_hash) AS recomputed,
           lag(event_id) OVER (ORDER BY event_id) AS prev_id,
           coalesce(lag(hash) OVER (ORDER BY event_id), '{GENESIS_HASH}') AS expected_prev
    FROM lifecycle_events
), last AS (SELECT event_id, hash FROM lifecycle_events ORDER BY event_id DESC LIMIT 1)
SELECT msg FROM (
    SELECT event_id, 'lifecycle event ' || (coalesce(prev_id, 0) + 1) || ' is missing: event ' || event_id
           || ' follows ' || coalesce('event ' || prev_id, 'the start of the records') AS msg, 0 AS k
    FROM e WHERE event_id <> coalesce(prev_id, 0) + 1
    UNION ALL
    SELECT event_id, {_EVENT_NAME} || ': stored hash does not match its contents (altered in place?)', 1
    FROM e WHERE recomputed <> hash
    UNION ALL
    SELECT event_id, {_EVENT_NAME} || ': prev_hash does not link to the hash of the record before', 2
    FROM e WHERE prev_hash <> expected_prev
    UNION ALL
    SELECT event_id, {_EVENT_NAME} || ': unknown kind', 3 FROM e WHERE kind NOT IN {EVENT_KINDS}
    UNION ALL
    SELECT 1e18, 'ledger head names lifecycle event ' || h.last_event_id || ' but the last record is '
           || coalesce(CAST(last.event_id AS VARCHAR), 'none') || ' (records deleted or added?)', 4
    FROM ledger_head h LEFT JOIN last ON true
    WHERE h.last_event_id <> coalesce(last.event_id, 0) OR h.last_event_hash <> coalesce(last.hash, '{GENESIS_HASH}')
)
ORDER BY event_id, k
LIMIT 1
"""

# What a review record must agree with: a recorded run of its year that appended entries, reviewed once,
# by someone other than the identity that started it (four eyes), that identity unchanged since.
REVIEWS_SQL = f"""
WITH e AS (SELECT * FROM lifecycle_events WHERE kind IN ('approve', 'reject'))
SELECT msg FROM (
    SELECT e.event_id, {event_name('e')}
           || CASE WHEN s.run_id IS NULL THEN ': names no recorded run of its year'
                   WHEN s.entries_appended = 0 THEN ': reviews a run that appended nothing'
                   WHEN e.actor = s.started_by THEN ': reviewer is the identity that started the run (four eyes)'
                   WHEN e.run_started_by IS DISTINCT FROM s.started_by THEN
                        ': the run''s started_by changed since the review (was ' || coalesce(e.run_started_by, 'NULL') || ')'
                   ELSE ': the run was already reviewed' END AS msg
    FROM e LEFT JOIN settlement_runs s ON s.run_id = e.run_id AND s.year = e.year
    WHERE s.run_id IS NULL OR s.entries_appended = 0 OR e.actor = s.started_by
       OR e.run_started_by IS DISTINCT FROM s.started_by
       OR e.event_id <> (SELECT min(o.event_id) FROM e o WHERE o.run_id = e.run_id)
)
ORDER BY event_id
LIMIT 1
"""


def verify_events(con: duckdb.DuckDBPyConnection) -> str | None:
    """The first problem of the lifecycle records (chain, head, reviews), as a sentence naming the record;
    None when they verify."""
    for sql in (EVENTS_CHAIN_SQL, REVIEWS_SQL):
        bad = con.execute(sql).fetchall()
        if bad:
            return bad[0][0]
    return None
