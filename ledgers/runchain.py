"""The runs' chain and the store's anchor (issue 15): every run row, its targets and the input digests it
read are hashed and chained run to run, so editing any of them (or the run row a deleted tail needs
patched) breaks ``settle ledger verify``; the anchor names one point of all three chains (entries, runs,
lifecycle records) in one token to keep outside the store.

Run canonical text (``run-v1``): ``run-v1|run_id|year|started_at_us|finished_at_us|L:params_hash|
L:inputs_fingerprint|L:engine_version|targets_count|entries_appended|head_entry_id|L:head_hash|
L:started_by|L:inputs_digest|L:targets_digest`` (texts ``L:`` = UTF-8 byte length and ``:``; NULL ``-``);
run_hash = sha256 hex of canonical ``|`` prev_run_hash, the first prev 64 zeros. Runs recorded before
migration 0012 have no run_hash; every later run must. inputs_digest = sha256 of
``source:ref_id:digest`` of its ``run_input_digests`` rows joined by ``|`` in (source, ref_id) order;
targets_digest = sha256 of ``clause|L:beneficiary_id|L:dataset_id|amount`` of its targets joined by newline
in key order (both: sha256 of the empty text when none).

Anchor token ``N:R:E:H``: N entries, R runs, E lifecycle records, H = sha256 hex of
``anchor-v1|<hash of entry N>|<run_hash of run R>|<hash of record E>`` (64 zeros for 0 or no hash).
Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from __future__ import annotations

import hashlib
import re

import duckdb

from ledgers.chain import GENESIS_HASH


def _text(col: str) -> str:
    return f"coalesce(CAST(strlen({col}) AS VARCHAR) || ':' || {col}, '-')"


def _value(expr: str) -> str:
    return f"coalesce(CAST({expr} AS VARCHAR), '-')"


def canonical_run_sql(alias: str = "") -> str:
    p = f"{alias}." if alias else ""
    return (
        f"concat_ws('|', 'run-v1', {_value(p + 'run_id')}, {_value(p + 'year')}, "
        f"{_value(f'epoch_us({p}started_at)')}, {_value(f'epoch_us({p}finished_at)')}, {_text(p + 'params_hash')}, "
        f"{_text(p + 'inputs_fingerprint')}, {_text(p + 'engine_version')}, {_value(p + 'targets_count')}, "
        f"{_value(p + 'entries_appended')}, {_value(p + 'head_entry_id')}, {_text(p + 'head_hash')}, "
        f"{_text(p + 'started_by')}, {_text(p + 'inputs_digest')}, {_text(p + 'targets_digest')})"
    )


INPUTS_DIGEST_SQL = """
SELECT sha256(coalesce(string_agg(source || ':' || ref_id || ':' || digest, '|' ORDER BY source, ref_id), ''))
FROM run_input_digests WHERE run_id = $run_id"""

TARGETS_DIGEST_SQL = f"""
SELECT sha256(coalesce(string_agg(concat_ws('|', clause, {_text('beneficiary_id')}, {_text('dataset_id')},
                                            CAST(amount AS VARCHAR)), chr(10)
                                  ORDER BY clause, beneficiary_id, dataset_id), ''))
FROM run_targets WHERE run_id = $run_id"""


def seal_run(con: duckdb.DuckDBPyConnection, run_id: int) -> str:
    """Inside the run's transaction, after its row, targets and entries: record the input digests it read,
    its inputs and targets digests, and chain its hash to the run before. Returns the run hash."""
    con.execute("INSERT INTO run_input_digests SELECT ?, source, ref_id, digest FROM input_digests", [run_id])
    con.execute(f"UPDATE settlement_runs SET inputs_digest = ({INPUTS_DIGEST_SQL}), "
                f"targets_digest = ({TARGETS_DIGEST_SQL}) WHERE run_id = $run_id", dict(run_id=run_id))
    prev = con.execute("SELECT run_hash FROM settlement_runs WHERE run_id < ? ORDER BY run_id DESC LIMIT 1",
                       [run_id]).fetchall()
    prev_hash = (prev[0][0] if prev else None) or GENESIS_HASH
    return con.execute(
        f"UPDATE settlement_runs SET prev_run_hash = $prev, run_hash = sha256({canonical_run_sql()} || '|' || $prev) "
        "WHERE run_id = $run_id RETURNING run_hash", dict(prev=prev_hash, run_id=run_id)).fetchall()[0][0]


# Each problem: (run_id, message); the lowest run is reported.
RUNS_CHAIN_SQL = f"""
WITH r AS (
    SELECT *, sha256({canonical_run_sql()} || '|' || coalesce(prev_run_hash, '')) AS recomputed,
           coalesce(lag(run_hash) OVER (ORDER BY run_id), '{GENESIS_HASH}') AS expected_prev,
           max(CASE WHEN run_hash IS NOT NULL THEN run_id END) OVER () AS last_hashed,
           min(CASE WHEN run_hash IS NOT NULL THEN run_id END) OVER () AS first_hashed
    FROM settlement_runs
), i AS (
    SELECT run_id, sha256(string_agg(source || ':' || ref_id || ':' || digest, '|' ORDER BY source, ref_id)) AS d
    FROM run_input_digests GROUP BY run_id
), t AS (
    SELECT run_id, sha256(string_agg(concat_ws('|', clause, {_text('beneficiary_id')}, {_text('dataset_id')},
                                               CAST(amount AS VARCHAR)), chr(10)
                                     ORDER BY clause, beneficiary_id, dataset_id)) AS d
    FROM run_targets GROUP BY run_id
), inputs_now AS (
    SELECT x.run_id, min(x.source || ' ' || x.ref_id) AS what
    FROM run_input_digests x LEFT JOIN input_digests d USING (source, ref_id)
    WHERE d.digest IS DISTINCT FROM x.digest GROUP BY x.run_id
)
SELECT run_id, msg FROM (
    SELECT run_id, 'run ' || run_id || ': has no run hash but a later run has (run row replaced or forged?)' AS msg,
           0 AS k FROM r WHERE run_hash IS NULL AND (run_id > first_hashed OR finished_at >= (
               SELECT min(applied_at) FROM schema_version WHERE version = 12))
    UNION ALL
    SELECT run_id, 'run ' || run_id || ': stored run hash does not match the run row (edited in place?)', 1
    FROM r WHERE run_hash IS NOT NULL AND recomputed <> run_hash
    UNION ALL
    SELECT run_id, 'run ' || run_id || ': prev_run_hash does not link to the run before', 2
    FROM r WHERE run_hash IS NOT NULL AND prev_run_hash <> expected_prev
    UNION ALL
    SELECT r.run_id, 'run ' || r.run_id || ': run_targets no longer match the targets digest it recorded', 3
    FROM r LEFT JOIN t USING (run_id)
    WHERE r.run_hash IS NOT NULL AND coalesce(t.d, sha256('')) <> r.targets_digest
    UNION ALL
    SELECT r.run_id, 'run ' || r.run_id || ': run_input_digests no longer match the inputs digest it recorded', 4
    FROM r LEFT JOIN i USING (run_id)
    WHERE r.run_hash IS NOT NULL AND coalesce(i.d, sha256('')) <> r.inputs_digest
    UNION ALL
    SELECT n.run_id, 'run ' || n.run_id || ': the digest it read of ' || n.what || ' differs from the one recorded now',
           5 FROM inputs_now n
)
ORDER BY run_id, k
LIMIT 1
"""


def verify_runs(con: duckdb.DuckDBPyConnection) -> tuple[int | None, str] | None:
    bad = con.execute(RUNS_CHAIN_SQL).fetchall()
    return (bad[0][0], bad[0][1]) if bad else None


# --------------------------------------------------------------------------------------------- anchors

def _hash_at(con: duckdb.DuckDBPyConnection, sql: str, position: int) -> str:
    if position == 0:
        return GENESIS_HASH
    rows = con.execute(sql, [position]).fetchall()
    return (rows[0][0] if rows else None) or GENESIS_HASH


def _combine(entry_hash: str, run_hash: str, event_hash: str) -> str:
    return hashlib.sha256(f"anchor-v1|{entry_hash}|{run_hash}|{event_hash}".encode()).hexdigest()


def anchor_at(con: duckdb.DuckDBPyConnection, entries: int, runs: int, events: int) -> str:
    """The anchor token of the store at these positions (see module docstring)."""
    h = _combine(_hash_at(con, "SELECT hash FROM ledger_entries WHERE entry_id = ?", entries),
                 _hash_at(con, "SELECT run_hash FROM settlement_runs WHERE run_id = ?", runs),
                 _hash_at(con, "SELECT hash FROM lifecycle_events WHERE event_id = ?", events))
    return f"{entries}:{runs}:{events}:{h}"


def current_anchor(con: duckdb.DuckDBPyConnection) -> str:
    """The anchor of the store's head now: print it, publish it, keep it outside the store."""
    n, r, e = con.execute(
        "SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM settlement_runs), "
        "(SELECT count(*) FROM lifecycle_events)").fetchall()[0]
    return anchor_at(con, n, r, e)


_TOKEN = re.compile(r"(\d+):(\d+):(\d+):([0-9a-f]{64})")


def check_anchor(con: duckdb.DuckDBPyConnection, anchor: str) -> str | None:
    """None when the store still holds ``anchor`` at its recorded position, else why not. ``anchor`` is a
    token ``N:R:E:H`` (settle ledger verify prints it) or a bare entry hash (then some entry must have it)."""
    anchor = anchor.strip().lower()
    if re.fullmatch(r"[0-9a-f]{64}", anchor):
        found = con.execute("SELECT entry_id FROM ledger_entries WHERE hash = ?", [anchor]).fetchall()
        return None if found else f"anchor {anchor} is no entry hash of this ledger (history rewritten?)"
    m = _TOKEN.fullmatch(anchor)
    if not m:
        return f"anchor {anchor!r} is neither N:R:E:HASH (as settle ledger verify prints) nor a 64-hex entry hash"
    n, r, e = (int(m.group(i)) for i in (1, 2, 3))
    have = con.execute(
        "SELECT (SELECT count(*) FROM ledger_entries), (SELECT count(*) FROM settlement_runs), "
        "(SELECT count(*) FROM lifecycle_events)").fetchall()[0]
    if n > have[0] or r > have[1] or e > have[2]:
        return (f"anchor {anchor[:24]}… names {n} entries, {r} runs, {e} records; the store holds only {have[0]}, "
                f"{have[1]}, {have[2]} (history deleted?)")
    if anchor_at(con, n, r, e) != anchor:
        return (f"anchor {anchor[:24]}… does not match the chain at entry {n}, run {r}, record {e}: history up "
                "to the anchor was rewritten")
    return None
