"""Backends: where the trade-level SQL of a settlement run executes (issue 14, CONTRACT "Backends").

The portable statements (``settlement/clauses/*.sql``: sale status, callers and per-dataset aggregates,
clause 7 volumes, related pairs, exclusions) run on a ``Backend``; affiliate groups, parameters, the cap
split, the ledger, explanations, the API and the SQL sandbox stay local in the DuckDB store.

``SETTLE_BACKEND=duckdb|spark`` (default duckdb) picks one (``from_env``); ``SETTLE_SPARK_REMOTE`` makes the
Spark backend a Spark Connect client of a cluster instead of an in-process local session; ``SETTLE_LAKE``
names the lake folder the Spark backend reads trades from (``settlement.backends.lake``).
Must not import the ledger, the run, the CLI or the API.
"""

from __future__ import annotations

import os

from settlement.backends.base import Backend, BackendError, to_local
from settlement.backends.duckdb_backend import DuckDBBackend

BACKENDS = ("duckdb", "spark")


def from_env(con) -> Backend:
    """The backend named by ``SETTLE_BACKEND`` (default duckdb), bound to the store connection ``con``."""
    name = os.environ.get("SETTLE_BACKEND", "duckdb").strip().lower() or "duckdb"
    if name == "duckdb":
        return DuckDBBackend(con)
    if name == "spark":
        from settlement.backends.spark_backend import SparkBackend

        return SparkBackend.for_store(con)
    raise BackendError(f"SETTLE_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "BackendError", "DuckDBBackend", "from_env", "to_local"]
