"""The append-only, hash-chained settlement ledger (P13). See ``ledgers.ledger`` for the parts.

Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from ledgers.ledger import (
    Entry,
    InvalidTargets,
    LedgerConflict,
    RunResult,
    VerifyResult,
    append_run,
    export,
    payouts,
    payouts_csv,
    payouts_records,
    verify,
    verify_export,
)

__all__ = [
    "Entry",
    "InvalidTargets",
    "LedgerConflict",
    "RunResult",
    "VerifyResult",
    "append_run",
    "export",
    "payouts",
    "payouts_csv",
    "payouts_records",
    "verify",
    "verify_export",
]
