"""The ledger's chain: canonical text and hash of an entry, and the values the ledger hands out (P13).

Owns the hash definition shared by ``append`` (when appending), ``verify`` (re-checking in SQL) and
``export`` (re-checking an export in Python); docs/architecture.md spells it out for outside verifiers.
Imports nothing of the project.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import duckdb

GENESIS_HASH = "0" * 64
KINDS = ("accrual", "adjustment")
KEY_COLUMNS = ("clause", "beneficiary_id", "dataset_id")


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
    anchor: str = field(default="", compare=False)  # N:R:E:HASH of the head verified (ledgers.runchain): keep it outside the store


class LedgerConflict(RuntimeError):
    """Another run of the ledger committed first, twice in a row: nothing was appended; run again."""


class InvalidTargets(ValueError):
    """The targets handed to append_run break the ledger's input rules (a bug in the caller)."""



def quietly(cleanup) -> None:
    """Run a cleanup after a failed (aborted) transaction without masking the real error."""
    try:
        cleanup()
    except duckdb.Error:
        pass
