"""CLI edge for the trade lake (issue 14): `settle export-lake --out DIR`.

Parses, calls ``settlement.backends.lake`` and prints; holds no rules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from settlement.backends import lake
from settlement.cli._app import DbOption, opened_store


def export_lake_cmd(
    out: Annotated[Path, typer.Option("--out", help="lake folder (created; uploads it holds are kept)")],
    db: DbOption = None,
) -> None:
    """Write the store's trades as the partitioned Parquet lake the Spark backend reads (docs/scale.md):
    one immutable file set per upload not yet in the lake, and the retractions table."""
    with opened_store(db) as con:
        result = lake.export_lake(con, out)
        checks = lake.store_checksums(con)
    if lake.manifest_checksums(out) != checks:
        typer.echo("the lake's manifests do not match the store's trades (count and Σ amount per year and "
                   "platform): was an upload changed after it was exported?", err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {len(result.uploads_written)} upload(s), {result.rows_written:,} rows; kept "
               f"{len(result.uploads_kept)} upload(s) already in the lake; {result.retracted} retracted; "
               f"checksums match ({len(checks)} year/platform partitions) -> {out}")
