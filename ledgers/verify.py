"""Verifying the ledger (P13): the hash chain, the head, every run's accounting and the re-derivation of
every key's balance from the runs' recorded targets. Read only.

Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from __future__ import annotations

import duckdb

from ledgers.chain import GENESIS_HASH, VerifyResult, canonical_sql
from ledgers.events import verify_events
from ledgers.runchain import check_anchor, current_anchor, verify_runs
from ledgers.signatures import first_problem
from settlement.inputs import digests


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

# Re-derivation (P13): after each run R of year Y, every key's balance equals R's recorded target, 0 when
# absent. The balance R saw: Σ entries with run_id ≤ R, less those of runs rejected before R ran (a reject
# record's head_run_id < R; a run rejected later still counted when R ran). Runs × keys of the year, an
# as-of join to cumulative balances, minus the (few) voided amounts.
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
), as_of AS (
    SELECT g.*, coalesce(b.balance, 0) AS balance, b.last_entry
    FROM grid g ASOF LEFT JOIN bal b
      ON g.year = b.year AND g.clause = b.clause AND g.beneficiary_id = b.beneficiary_id
     AND g.dataset_id = b.dataset_id AND g.run_id >= b.run_id
), rejected AS (
    SELECT run_id, min(head_run_id) AS rejected_after FROM lifecycle_events WHERE kind = 'reject' GROUP BY run_id
), voided AS (
    SELECT g.run_id, g.year, g.clause, g.beneficiary_id, g.dataset_id, sum(p.amt) AS amt
    FROM per p JOIN rejected r USING (run_id)
    JOIN grid g ON g.year = p.year AND g.clause = p.clause AND g.beneficiary_id = p.beneficiary_id
     AND g.dataset_id = p.dataset_id AND r.rejected_after < g.run_id
    GROUP BY ALL
), balances AS (
    SELECT a.run_id, a.year, a.clause, a.beneficiary_id, a.dataset_id, a.last_entry,
           a.balance - coalesce(v.amt, 0) AS balance
    FROM as_of a LEFT JOIN voided v USING (run_id, year, clause, beneficiary_id, dataset_id)
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


def verify(con: duckdb.DuckDBPyConnection, *, anchors: tuple[str, ...] = ()) -> VerifyResult:
    """Recompute every hash in entry order, check the prev_hash links, the head, the runs' accounting, the
    runs' chain (their rows, targets and input digests: ``ledgers.runchain``), re-derive every key's balance
    from the recorded targets (rejected runs void from their rejection on), recompute every input digest
    from the stored rows (``settlement.inputs.digests``), then the lifecycle records
    (``ledgers.events.verify_events``), every approval signature (``ledgers.signatures``) and each anchor
    given (``ledgers.runchain.check_anchor``). Names the first bad entry, run, row range or record; the
    result carries the anchor of the head it verified."""
    entries = con.execute("SELECT count(*) FROM ledger_entries").fetchall()[0][0]
    runs = con.execute("SELECT count(*) FROM settlement_runs").fetchall()[0][0]
    anchor = current_anchor(con)
    for sql in (_CHAIN_SQL, _HEAD_SQL):
        bad = con.execute(sql).fetchall()
        if bad:
            entry_id, message = bad[0]
            return VerifyResult(False, entries, entry_id, message, runs, anchor)
    bad = con.execute(_DERIVE_SQL).fetchall()
    if bad:
        return VerifyResult(False, entries, bad[0][0], bad[0][1], runs, anchor)
    events = con.execute("SELECT count(*) FROM lifecycle_events").fetchall()[0][0]
    for check in (verify_events, lambda c: (verify_runs(c) or (None, None))[1], digests.first_mismatch, first_problem,
                  *(lambda c, a=a: check_anchor(c, a) for a in anchors)):
        problem = check(con)
        if problem:
            return VerifyResult(False, entries, None, problem, runs, anchor)
    records = f", {events} lifecycle records" if events else ""
    return VerifyResult(True, entries, None, f"ok: {entries} entries in {runs} runs{records} verified", runs, anchor)

