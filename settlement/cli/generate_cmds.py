"""`settle generate`: synthetic but valid exchange data for benchmarks (issue 2 item 8).

Thin edge: parses options, calls ``settlement.tools.generate.generate`` and prints what it wrote.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from settlement.cli._app import fail
from settlement.cli.render import FileFormat
from settlement.tools.generate import SHAPES, GenerateSpec, generate, parse_size, spec_errors

Shape = Enum("Shape", {name: name for name in SHAPES}, type=str)


def generate_cmd(
    out: Annotated[Path, typer.Option("--out", help="Directory to write into (created when missing)")],
    trades: Annotated[int | None, typer.Option("--trades", help="Trade rows (sales + ~2% refunds)")] = None,
    parties: Annotated[int, typer.Option("--parties", help="Enterprises (credit codes), platforms included")] = 10_000,
    relations: Annotated[int, typer.Option("--relations", help="Affiliation records")] = 20_000,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files")] = 0,
    fmt: Annotated[FileFormat, typer.Option("--format", help="Trade file format: csv | parquet")] = FileFormat.csv,
    datasets: Annotated[int | None, typer.Option("--datasets", help="Datasets (default max(20, parties/50))")] = None,
    platforms: Annotated[int, typer.Option("--platforms", help="Platform enterprises")] = 3,
    chunk_rows: Annotated[
        int | None, typer.Option("--chunk-rows", help="Write trades_00001.csv ... of this many rows each")
    ] = None,
    bytes_target: Annotated[
        str | None,
        typer.Option("--bytes-target", help="Keep adding trades until the trade files hold this much, e.g. 4.5GiB"),
    ] = None,
    shape: Annotated[
        Shape, typer.Option("--shape", help="default (owners buy too, one giant affiliate group) | realistic "
                                            "(an honest exchange: clean data raises almost no integrity flag)")
    ] = None,
    fraud: Annotated[bool, typer.Option("--fraud", help="Plant every integrity pattern (fraud_trades.csv, "
                                                        "late_refunds.csv, fraud_plants.csv; issue 13)")] = False,
    fraud_each: Annotated[int, typer.Option("--fraud-each", help="Instances of each pattern with --fraud")] = 3,
) -> None:
    """Write datasets.csv, platforms.csv, affiliations.csv, prior_awards.csv and trade files into --out."""
    try:
        target = parse_size(bytes_target) if bytes_target is not None else None
    except ValueError as exc:
        fail(str(exc))
    spec = GenerateSpec(
        out=out,
        parties=parties,
        relations=relations,
        trades=trades,
        seed=seed,
        fmt=fmt.value,
        datasets=datasets,
        platforms=platforms,
        chunk_rows=chunk_rows,
        bytes_target=target,
        shape=(shape or Shape.default).value,
        fraud_each=fraud_each if fraud else 0,
    )
    errors = spec_errors(spec)
    if errors:
        fail("; ".join(errors))
    result = generate(spec)
    for kind, path in result.registry_files.items():
        typer.echo(f"{kind:<13} {path}")
    files = result.trade_files
    shown = str(files[0]) if len(files) == 1 else f"{files[0]} .. {files[-1].name} ({len(files)} files)"
    typer.echo(f"{'trades':<13} {shown}")
    typer.echo(
        f"{result.rows:,} rows ({result.sales:,} sales, {result.refunds:,} refunds), "
        f"{result.trade_bytes / 2**20:,.1f} MiB of trades in {result.seconds:.1f} s"
    )
