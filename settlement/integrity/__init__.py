"""Integrity flags (issue 13, docs/integrity.md): signals of manufactured trades (subsidy farming, 刷单套补)
for the reviewer who approves a run.

Owns: the thresholds (``thresholds.toml``, dated settings that are NOT policy parameters, ``thresholds``),
the codes (``callers``: THIN_THRESHOLD, RECIPROCAL_CALLERS, CALLER_RING, SHARED_CALLER_SET, LATE_CALLERS,
CAP_SPLITTING over the run's stored caller and dataset results; ``trades``: ROUND_TRIP, PRICE_OUTLIER,
REFUND_AFTER_APPROVAL over the stored trades), the regulator tables ``integrity_flags`` and
``integrity_reviews`` (migration 0010) and their reading (``flags``: ``compute_flags``, ``year_flags``,
``review_flag``, ``unreviewed_flags``).

Flags never change an amount: nothing here writes a clause table or the ledger, and nothing in the clauses
or the ledger reads a flag. May import ``settlement.core``; must not import ``ledgers``, the CLI or ``api``.
"""
