"""The append-only, hash-chained settlement ledger (P13), as one namespace: ``from ledgers import ledger``.

A thin re-export of the modules that own the parts (kept so ``ledger.append_run``, ``ledger.payouts`` ...
keep working for every importer):
- ``ledgers.chain``: the canonical text and hash of an entry, the result types;
- ``ledgers.append``: ``append_run`` (settlement_runs, run_targets, ledger_entries, ledger_head);
- ``ledgers.events``: ``record`` (the lifecycle records' chain: approve, reject, notice ...);
- ``ledgers.verify``: ``verify`` (chain, head, re-derivation, and the lifecycle records' chain);
- ``ledgers.payouts``: ``payouts`` and its CSV / JSON forms;
- ``ledgers.export``: ``export`` and ``verify_export``.
"""

from __future__ import annotations

from ledgers.append import CONFLICT_ATTEMPTS, append_run, serialised
from ledgers.chain import (
    GENESIS_HASH,
    KEY_COLUMNS,
    KINDS,
    Entry,
    InvalidTargets,
    LedgerConflict,
    RunResult,
    VerifyResult,
    canonical_sql,
    chain_hash,
)
from ledgers.export import EXPORT_FORMATS, export, verify_export
from ledgers.events import EVENT_KINDS, record, verify_events
from ledgers.payouts import PAYOUT_COLUMNS, STATES, format_amount, payouts, payouts_csv, payouts_records
from ledgers.verify import verify

__all__ = [
    "CONFLICT_ATTEMPTS", "EVENT_KINDS", "EXPORT_FORMATS", "GENESIS_HASH", "KEY_COLUMNS", "KINDS", "PAYOUT_COLUMNS", "Entry",
    "InvalidTargets", "LedgerConflict", "RunResult", "VerifyResult", "append_run", "canonical_sql", "chain_hash",
    "export", "format_amount", "payouts", "payouts_csv", "payouts_records", "record", "serialised", "STATES", "verify", "verify_events",
    "verify_export",
]
