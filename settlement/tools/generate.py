"""Synthetic but valid exchange data at any size, for benchmarks and load tests (`settle generate`).

Owns: making registries (datasets, platforms, affiliations, prior awards) and trade files in the formats
of CONTRACT "Input files", fast (numpy draws, polars string formatting and writing; no Python loop over
rows) and deterministic for a seed. Must not import the CLI, the API or the store: it only writes files.

What the data looks like (so benchmarks meet realistic shapes):
- parties are enterprises with valid credit codes (settlement.tools.credit_codes, P4); affiliation records also
  name natural persons ``P:nnnnnnn`` (P4), never as buyer, seller, owner or platform;
- Zipf-like skew: a few datasets and buyers carry most trades, most datasets are small;
- the seller of a trade is the dataset's owner; buyer != seller;
- ~2 % of rows are refunds of a sale of the same file and platform, placed after their sale (so a file cut
  into chunks can be ingested in order), never more than the sale (P9); some refunds are full;
- traded_at spans local 2023-01-01 .. 2026-12-31, i.e. both sides of the policy window (P2) and of every
  year boundary (P3), written as UTC ``Z``, local without offset, or ``+08:00``;
- amounts are exact 2-decimal strings (P1).

Shapes (``shape``): ``default`` as above (owners also buy, random affiliation records that join most parties
into one group: a stress case); ``realistic`` = an honest exchange (buyers are never owners, milder buyer
skew, each dataset has a list price and sales vary around it by ~25 %, affiliations are corporate groups of
buyers and owners' own holders, ``settlement.tools.fraud.realistic_affiliations``). ``fraud_each`` > 0 plants
every integrity pattern that many times (``settlement.tools.fraud``: fraud_trades.csv, late_refunds.csv,
fraud_plants.csv), on parties and datasets of their own.

Rows are made in fixed blocks of BLOCK_ROWS, each with its own seeded generator, so the rows are the same
whatever the chunking and memory stays bounded however many rows are asked for (a > 4 GiB file is fine).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from settlement.tools import fraud
from settlement.tools.world import (  # noqa: F401  (re-exported: GenerateSpec, spec_errors, SHAPES, ...)
    datasets_frame,
    _ids_series,
    platforms_frame,
    affiliations_frame,
    prior_awards_frame,
    AFFILIATION_COLUMNS,
    BLOCK_ROWS,
    DATASET_COLUMNS,
    FORMATS,
    FULL_REFUND_RATE,
    GenerateResult,
    GenerateSpec,
    LOCAL_END,
    LOCAL_START,
    REALISTIC_PRICE_SIGMA,
    REFUND_RATE,
    SHANGHAI_OFFSET_S,
    SHAPES,
    TIME_FORMS,
    TRADE_COLUMNS,
    _World,
    _build_world,
    _date_text,
    _epoch_day,
    _ids,
    _money,
    spec_errors,
    zipf_sampler,
)



def _sale_cents(world: _World, rng: np.random.Generator, ds: np.ndarray) -> np.ndarray:
    """Sale amounts in cents: log-normal around ¥2,000 (default), or around the dataset's list price."""
    if world.dataset_price is None:
        return np.clip(np.exp(rng.normal(np.log(2_000_00), 1.3, size=ds.size)), 1, 99_999_999_99).astype(np.int64)
    spread = np.exp(rng.normal(0.0, REALISTIC_PRICE_SIGMA, size=ds.size))
    return np.clip(world.dataset_price[ds] * spread, 1, 99_999_999_99).astype(np.int64)


def trades_block(world: _World, seed: int, block: int, rows: int) -> pl.DataFrame:
    """Rows [block*BLOCK_ROWS, block*BLOCK_ROWS + rows) of the trade stream, all string columns.

    Refunds reference a sale of this block on the same platform and are placed right after it.
    """
    rng = np.random.default_rng([seed, 1, block])
    n_ref = int(round(rows * REFUND_RATE)) if rows >= 2 else 0
    n_sale = rows - n_ref
    n_ref = min(n_ref, n_sale)
    n_sale = rows - n_ref
    ds = world.dataset_rank(rng, n_sale)
    seller = world.dataset_owner[ds]
    buyer = world.buyer_of_rank[world.buyer_rank(rng, n_sale)]
    # buyer != seller (CONTRACT row error): take the next non-platform enterprise instead.
    p = world.n_platforms
    buyer = np.where(buyer == seller, p + (seller - p + 1) % (world.n_parties - p), buyer)
    platform = world.dataset_platform[ds]
    span = int((LOCAL_END - LOCAL_START).total_seconds())
    local_s = int(LOCAL_START.timestamp()) + rng.integers(0, span, size=n_sale)
    cents = _sale_cents(world, rng, ds)

    # Refunds: distinct sales, each refunded once, by part or in full, 1 hour .. 120 days later.
    sold = np.sort(rng.choice(n_sale, size=n_ref, replace=False)) if n_ref else np.empty(0, dtype=np.int64)
    full = rng.random(n_ref) < FULL_REFUND_RATE
    part = (rng.random(n_ref) * (cents[sold] - 1)).astype(np.int64) + 1
    ref_cents = np.where(full | (cents[sold] <= 1), cents[sold], np.minimum(part, cents[sold]))
    ref_local_s = local_s[sold] + rng.integers(3600, 120 * 86400, size=n_ref)

    # Row positions: each refund right after its sale (so chunks ingested in order always know the sale).
    sale_pos = np.arange(n_sale) + np.searchsorted(sold, np.arange(n_sale), side="left")
    ref_pos = sold + np.arange(n_ref) + 1
    base = block * BLOCK_ROWS

    def column(sale_values: np.ndarray, refund_values: np.ndarray) -> np.ndarray:
        out = np.empty(rows, dtype=sale_values.dtype)
        out[sale_pos] = sale_values
        out[ref_pos] = refund_values
        return out

    is_refund = np.zeros(rows, dtype=bool)
    is_refund[ref_pos] = True
    ref_row = np.full(rows, -1, dtype=np.int64)
    ref_row[ref_pos] = base + sale_pos[sold]
    form = rng.choice(3, size=rows, p=TIME_FORMS)
    local = column(local_s, ref_local_s)
    shown = np.where(form == 0, local - SHANGHAI_OFFSET_S, local)  # 'Z' rows show the UTC wall clock
    frame = pl.DataFrame(
        {
            "row": np.arange(base, base + rows, dtype=np.int64),
            "platform": column(platform, platform[sold]),
            "ds": column(ds, ds[sold]),
            "seller": column(seller, seller[sold]),
            "buyer": column(buyer, buyer[sold]),
            "shown": shown,
            "form": form,
            "cents": column(cents, ref_cents),
            "refund": is_refund,
            "ref_row": ref_row,
        }
    )
    codes = world.codes
    return frame.select(
        _ids("T", pl.col("row"), 11).alias("trade_id"),
        pl.col("platform").map_batches(lambda s: codes.gather(s), return_dtype=pl.String).alias("platform_id"),
        _ids("DS", pl.col("ds"), 7).alias("dataset_id"),
        pl.col("seller").map_batches(lambda s: codes.gather(s), return_dtype=pl.String).alias("seller_id"),
        pl.col("buyer").map_batches(lambda s: codes.gather(s), return_dtype=pl.String).alias("buyer_id"),
        (
            pl.from_epoch("shown", time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
            + pl.when(pl.col("form") == 0).then(pl.lit("Z")).when(pl.col("form") == 2).then(pl.lit("+08:00"))
            .otherwise(pl.lit(""))
        ).alias("traded_at"),
        _money(pl.col("cents")).alias("amount"),
        pl.when("refund").then(pl.lit("refund")).otherwise(pl.lit("sale")).alias("kind"),
        pl.when("refund").then(_ids("T", pl.col("ref_row"), 11)).otherwise(None).alias("ref_trade_id"),
    )


class _TradeWriter:
    """Writes blocks to one file or to chunk files of chunk_rows rows, CSV or Parquet."""

    def __init__(self, out: Path, fmt: str, chunk_rows: int | None):
        self.out, self.fmt, self.chunk_rows = out, fmt, chunk_rows
        self.files: list[Path] = []
        self._handle = None
        self._parquet = None
        self._rows_in_file = 0

    def _open_next(self) -> None:
        self.close()
        name = "trades" if self.chunk_rows is None else f"trades_{len(self.files) + 1:05d}"
        path = self.out / f"{name}.{self.fmt}"
        self.files.append(path)
        self._rows_in_file = 0
        if self.fmt == "csv":
            self._handle = open(path, "wb")

    def _write(self, frame: pl.DataFrame) -> None:
        if self.fmt == "csv":
            frame.write_csv(self._handle, include_header=self._rows_in_file == 0)
        else:
            table = frame.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.files[-1], table.schema)
            self._parquet.write_table(table)
        self._rows_in_file += frame.height

    def write(self, frame: pl.DataFrame) -> None:
        offset = 0
        while offset < frame.height or (frame.height == 0 and not self.files):
            if not self.files or (self.chunk_rows is not None and self._rows_in_file >= self.chunk_rows):
                self._open_next()
            room = frame.height - offset if self.chunk_rows is None else self.chunk_rows - self._rows_in_file
            part = frame.slice(offset, room)
            self._write(part)
            offset += part.height
            if frame.height == 0:
                break

    def bytes_written(self) -> int:
        if self._handle is not None:
            self._handle.flush()
        return sum(f.stat().st_size for f in self.files if f.exists())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def generate(spec: GenerateSpec) -> GenerateResult:
    """Write the registries and the trade files of ``spec`` into ``spec.out``. Raises ValueError on a bad spec."""
    errors = spec_errors(spec)
    if errors:
        raise ValueError("; ".join(errors))
    started = time.perf_counter()
    spec.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([spec.seed, 0])
    world = _build_world(spec, rng)
    registries = {
        "datasets": datasets_frame(spec, world, rng),
        "platforms": platforms_frame(spec, world),
        "affiliations": (affiliations_frame(spec, world, rng) if spec.shape == "default" else
                         fraud.realistic_affiliations(spec.relations, world.owners, world.buyer_of_rank, world.codes, rng)),
        "prior_awards": prior_awards_frame(spec, rng),
    }
    extra_files = _write_plants(spec, world, registries) if spec.fraud_each else {}
    registry_files = {}
    for kind, frame in registries.items():
        path = spec.out / f"{kind}.csv"
        frame.write_csv(path)
        registry_files[kind] = path
    registry_files.update(extra_files)

    writer = _TradeWriter(spec.out, spec.fmt, spec.chunk_rows)
    rows = refunds = 0
    block = 0
    try:
        while True:
            want = BLOCK_ROWS if spec.trades is None else min(BLOCK_ROWS, spec.trades - rows)
            if want <= 0 and rows > 0:
                break
            frame = trades_block(world, spec.seed, block, max(want, 0))
            writer.write(frame)
            rows += frame.height
            refunds += int((frame["kind"] == "refund").sum())
            block += 1
            if want <= 0:
                break
            if spec.bytes_target is not None and writer.bytes_written() >= spec.bytes_target:
                break
    finally:
        writer.close()
    return GenerateResult(
        trade_files=tuple(writer.files),
        registry_files=registry_files,
        rows=rows,
        sales=rows - refunds,
        refunds=refunds,
        trade_bytes=sum(f.stat().st_size for f in writer.files),
        seconds=time.perf_counter() - started,
    )


def _write_plants(spec: GenerateSpec, world: _World, registries: dict[str, pl.DataFrame]) -> dict[str, Path]:
    """Add the planted patterns' datasets and affiliations to the registries (in place) and write
    fraud_trades.csv, late_refunds.csv and fraud_plants.csv; returns those three paths."""
    plants = fraud.plant(str(world.codes[0]), spec.seed, spec.fraud_each)
    registries["datasets"] = pl.concat([registries["datasets"], pl.DataFrame(plants.datasets, schema={
        c: pl.String for c in DATASET_COLUMNS})])
    if plants.affiliations:
        registries["affiliations"] = pl.concat([registries["affiliations"], pl.DataFrame(
            plants.affiliations, schema={c: pl.String for c in AFFILIATION_COLUMNS})])
    files = {}
    for name, rows, columns in (("fraud_trades", plants.trades, TRADE_COLUMNS),
                                ("late_refunds", plants.late_refunds, TRADE_COLUMNS),
                                ("fraud_plants", plants.manifest, fraud.MANIFEST_COLUMNS)):
        files[name] = spec.out / f"{name}.csv"
        pl.DataFrame(rows, schema={c: pl.String for c in columns}).write_csv(files[name])
    return files


def parse_size(text: str) -> int:
    """'4.5GiB', '500MB', '1200' -> bytes (binary and decimal suffixes)."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([A-Z]*)", text.strip().upper().replace(" ", ""))
    if not match or match.group(2) not in units:
        raise ValueError(f"not a size: {text!r} (e.g. 4.5GiB, 500MB)")
    return int(float(match.group(1)) * units[match.group(2)])
