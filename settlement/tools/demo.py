"""`settle demo`: load a folder of sample files (registries, then trade files in name order) and settle.

Owns: the order in which a sample folder is loaded (CONTRACT "settle demo"; sample_trades/README.md).
Uses the same stages as the CLI (``registry.load_registry``, ``ingest.ingest_file``, ``run.settle_all``);
holds no rule. Must not import the CLI or the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ledgers import ledger
from settlement.inputs import ingest
from settlement.inputs import registry
from settlement.run import settle_all

# Registry files of a sample folder, in load order (kind, file name).
REGISTRY_FILES = (("platforms", "platforms.csv"), ("datasets", "datasets.csv"),
                  ("affiliations", "affiliations.csv"), ("prior_awards", "prior_awards.csv"))
TRADE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".xlsx")


@dataclass(frozen=True)
class DemoResult:
    loads: tuple[registry.LoadReport, ...]
    uploads: tuple[ingest.UploadReport, ...]
    runs: tuple[ledger.RunResult, ...]


def trade_files(folder: Path) -> list[Path]:
    registry_names = {name for _kind, name in REGISTRY_FILES}
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix in TRADE_SUFFIXES and p.name not in registry_names)


def load_and_settle(con: duckdb.DuckDBPyConnection, folder: Path, *, params, by: str) -> DemoResult:
    """Load the registries that exist in ``folder``, then every trade file by name, then settle all years.
    Re-running on the same store loads nothing new (same bytes) and appends nothing (P13)."""
    loads = tuple(registry.load_registry(con, kind, folder / name, loaded_by=by)
                  for kind, name in REGISTRY_FILES if (folder / name).exists())
    uploads = tuple(ingest.ingest_file(con, path, uploaded_by=by) for path in trade_files(folder))
    runs = tuple(settle_all(con, params=params))
    return DemoResult(loads, uploads, runs)
