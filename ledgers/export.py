"""Exporting the ledger (`settle ledger export`) and re-verifying an export alone, without the database.

Must not import ``api``, ``settlement.cli`` or the clause code.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl

from ledgers.chain import GENESIS_HASH, VerifyResult, chain_hash


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
