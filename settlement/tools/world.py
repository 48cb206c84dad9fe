"""The synthetic exchange's world for `settle generate`: its knobs (``GenerateSpec``), the parties, datasets
and platforms drawn for a seed (``_World``, ``_build_world``), the registry frames (datasets, platforms,
affiliations, prior awards) and the small helpers the trade writer shares. Writes nothing. Must not import the CLI, the API or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from settlement.tools import fraud
from settlement.tools.credit_codes import credit_codes

BLOCK_ROWS = 1_000_000
FORMATS = ("csv", "parquet")
TRADE_COLUMNS = (
    "trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "amount", "kind", "ref_trade_id",
)
DATASET_COLUMNS = ("dataset_id", "owner_id", "name", "certified_on", "certified_until")
PLATFORM_COLUMNS = ("platform_id", "name", "certified_on", "certified_until")
AFFILIATION_COLUMNS = ("a_id", "b_id", "relation", "share", "valid_from", "valid_to", "exempt")
PRIOR_AWARD_COLUMNS = ("dataset_id", "year", "amount", "source")

# Local (Asia/Shanghai, P3) span of trade timestamps: the whole of 2023..2026, around the window of P2.
LOCAL_START = datetime(2023, 1, 1, tzinfo=timezone.utc)  # read as a local wall-clock instant
LOCAL_END = datetime(2027, 1, 1, tzinfo=timezone.utc)
SHANGHAI_OFFSET_S = 8 * 3600  # UTC+08:00, no daylight saving (P3)
# Share of rows per timestamp form: UTC 'Z', local without offset, explicit '+08:00'.
TIME_FORMS = (0.45, 0.45, 0.10)
REFUND_RATE = 0.02
FULL_REFUND_RATE = 0.3
DATASET_ZIPF = 1.1
BUYER_ZIPF = 0.9
OWNER_ZIPF = 1.0
SHAPES = ("default", "realistic")
REALISTIC_BUYER_ZIPF = 0.6
REALISTIC_PRICE_SIGMA = 0.25  # per-sale spread around the dataset's list price (log scale)


@dataclass(frozen=True)
class GenerateSpec:
    """What to generate. At least one of ``trades`` / ``bytes_target`` bounds the trade rows."""

    out: Path
    parties: int
    relations: int
    trades: int | None = None
    seed: int = 0
    fmt: str = "csv"
    datasets: int | None = None  # default: max(20, parties // 50)
    platforms: int = 3
    chunk_rows: int | None = None  # None: one trade file
    bytes_target: int | None = None  # stop once the trade files hold at least this many bytes
    shape: str = "default"  # or "realistic" (module docstring)
    fraud_each: int = 0  # > 0: plant every integrity pattern this many times (settlement.tools.fraud)

    def dataset_count(self) -> int:
        return self.datasets if self.datasets is not None else max(20, self.parties // 50)


@dataclass(frozen=True)
class GenerateResult:
    trade_files: tuple[Path, ...]
    registry_files: dict[str, Path] = field(default_factory=dict)
    rows: int = 0
    sales: int = 0
    refunds: int = 0
    trade_bytes: int = 0
    seconds: float = 0.0


def spec_errors(spec: GenerateSpec) -> list[str]:
    """User errors in a spec, as sentences (empty when it can be generated)."""
    errors = []
    if spec.trades is None and spec.bytes_target is None:
        errors.append("give --trades or --bytes-target")
    if spec.trades is not None and spec.trades < 0:
        errors.append("--trades must be >= 0")
    if spec.platforms < 1:
        errors.append("--platforms must be >= 1")
    if spec.parties < spec.platforms + 2:
        errors.append(f"--parties must be at least {spec.platforms + 2} (platforms + a seller and a buyer)")
    if spec.parties + spec.platforms > 10**8:
        errors.append("--parties must be below 100,000,000 (distinct credit codes)")
    if spec.relations < 0:
        errors.append("--relations must be >= 0")
    if spec.dataset_count() < 1:
        errors.append("--datasets must be >= 1")
    if spec.fmt not in FORMATS:
        errors.append(f"--format must be one of {', '.join(FORMATS)}")
    if spec.chunk_rows is not None and spec.chunk_rows < 1:
        errors.append("--chunk-rows must be >= 1")
    if spec.bytes_target is not None and spec.bytes_target < 1:
        errors.append("--bytes-target must be >= 1")
    if spec.shape not in SHAPES:
        errors.append(f"--shape must be one of {', '.join(SHAPES)}")
    if spec.fraud_each < 0 or spec.fraud_each > 1000:
        errors.append("--fraud-each must be between 0 and 1000")
    if spec.fraud_each and spec.parties + spec.platforms > fraud.PLANT_SERIAL_BASE:
        errors.append(f"--parties must be below {fraud.PLANT_SERIAL_BASE:,} with --fraud")
    return errors


# ---------------------------------------------------------------------------------------------- helpers


def zipf_sampler(n: int, s: float):
    """Inverse-CDF sampler of ranks 0..n-1 with P(rank k) ∝ 1/(k+1)^s (bounded Zipf)."""
    cdf = np.cumsum(1.0 / np.arange(1, n + 1, dtype=np.float64) ** s)
    cdf /= cdf[-1]

    def draw(rng: np.random.Generator, size: int) -> np.ndarray:
        return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), n - 1)

    return draw


def _ids(prefix: str, numbers: pl.Expr | pl.Series, width: int):
    return pl.lit(prefix) + numbers.cast(pl.String).str.zfill(width)


def _money(cents: pl.Expr) -> pl.Expr:
    """Integer cents -> exact 'units.cc' text (P1): no float ever touches the amount."""
    return (cents // 100).cast(pl.String) + pl.lit(".") + (cents % 100).cast(pl.String).str.zfill(2)


def _date_text(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype("datetime64[D]")).dt.strftime("%Y-%m-%d")


def _epoch_day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


@dataclass(frozen=True)
class _World:
    """Parties and registries shared by every trade block."""

    codes: pl.Series  # credit code of party i (platforms are parties 0..platforms-1)
    dataset_owner: np.ndarray  # party index per dataset
    dataset_platform: np.ndarray  # platform index (= party index) per dataset
    dataset_rank: object  # sampler of datasets
    buyer_rank: object  # sampler of buyer ranks
    buyer_of_rank: np.ndarray  # party index per buyer rank
    n_parties: int
    n_platforms: int
    owners: np.ndarray | None = None  # party indices of the owners
    dataset_price: np.ndarray | None = None  # realistic shape: list price per dataset, cents


def _build_world(spec: GenerateSpec, rng: np.random.Generator) -> _World:
    m, p, d = spec.parties, spec.platforms, spec.dataset_count()
    codes = pl.Series("code", credit_codes(np.arange(m)))
    # Owners are enterprises outside the platforms; a few owners hold many datasets (Zipf).
    n_owners = max(1, min(m - p, d // 3 + 1))
    owner_pool = p + rng.permutation(m - p)[:n_owners]
    owner_of_dataset = owner_pool[zipf_sampler(n_owners, OWNER_ZIPF)(rng, d)]
    dataset_platform = rng.integers(0, p, size=d)
    buyers = p + rng.permutation(m - p)  # any non-platform enterprise may buy, owners included
    if spec.shape == "realistic":
        return _realistic_world(spec, rng, codes, owner_pool, owner_of_dataset, dataset_platform)
    return _World(
        codes=codes,
        dataset_owner=owner_of_dataset,
        dataset_platform=dataset_platform,
        dataset_rank=zipf_sampler(d, DATASET_ZIPF),
        buyer_rank=zipf_sampler(m - p, BUYER_ZIPF),
        buyer_of_rank=buyers,
        n_parties=m,
        n_platforms=p,
    )


def _realistic_world(spec, rng, codes, owner_pool, owner_of_dataset, dataset_platform) -> _World:
    """Buyers are the enterprises that own no dataset (an honest exchange: owners do not buy each other's
    data); each dataset has a list price (log-normal across datasets)."""
    m, p, d = spec.parties, spec.platforms, spec.dataset_count()
    not_owner = np.setdiff1d(np.arange(p, m), owner_pool)
    buyers = rng.permutation(not_owner) if not_owner.size else owner_pool
    price = np.clip(np.exp(rng.normal(np.log(2_000_00), 1.0, size=d)), 100, 10**10).astype(np.int64)
    return _World(codes=codes, dataset_owner=owner_of_dataset, dataset_platform=dataset_platform,
                  dataset_rank=zipf_sampler(d, DATASET_ZIPF), buyer_rank=zipf_sampler(buyers.size, REALISTIC_BUYER_ZIPF),
                  buyer_of_rank=buyers, n_parties=m, n_platforms=p, owners=owner_pool, dataset_price=price)


# ---------------------------------------------------------------------------------------------- registries


def datasets_frame(spec: GenerateSpec, world: _World, rng: np.random.Generator) -> pl.DataFrame:
    """datasets.csv: mostly certified since 2023-01-01 with an open end; some from mid-window, some ending,
    some only from 2027 (never within the window) (P10.1)."""
    d = spec.dataset_count()
    kind = rng.choice(4, size=d, p=[0.80, 0.10, 0.05, 0.05])
    start = _epoch_day(date(2023, 6, 1)) + rng.integers(0, 900, size=d)
    # P10.1 (amended 2026-11-30): an empty certified_on means never certified, so "certified throughout"
    # is written as certified since 2023-01-01 (before the window opens).
    on = np.where(kind == 1, start, np.where(kind == 3, _epoch_day(date(2027, 1, 1)), _epoch_day(date(2023, 1, 1))))
    until = np.where(kind == 2, start, -1)
    frame = pl.DataFrame(
        {
            "dataset_id": _ids_series("DS", np.arange(d), 7),
            "owner_id": world.codes.gather(world.dataset_owner),
            "name": _ids_series("Synthetic dataset ", np.arange(d), 7),
            "certified_on": _date_text(on),
            "certified_until": _date_text(until),
        }
    )
    return frame.with_columns(
        pl.when(pl.Series(on) >= 0).then(pl.col("certified_on")).otherwise(None).alias("certified_on"),
        pl.when(pl.Series(until) >= 0).then(pl.col("certified_until")).otherwise(None).alias("certified_until"),
    )


def _ids_series(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    return pl.select(_ids(prefix, pl.lit(pl.Series(numbers)), width)).to_series()


def platforms_frame(spec: GenerateSpec, world: _World) -> pl.DataFrame:
    """platforms.csv: platform 0 certified throughout, platform 1 only from 2024-07-01 (P11.1), others open."""
    p = spec.platforms
    on = [None] * p
    if p > 1:
        on[1] = "2024-07-01"
    return pl.DataFrame(
        {
            "platform_id": world.codes.head(p),
            "name": [f"Synthetic exchange {i + 1}" for i in range(p)],  # p is tiny: a handful of names
            "certified_on": pl.Series(on, dtype=pl.String),
            "certified_until": pl.Series([None] * p, dtype=pl.String),
        }
    )


def affiliations_frame(spec: GenerateSpec, world: _World, rng: np.random.Generator) -> pl.DataFrame:
    """affiliations.csv with K records: mostly equity with shares, some control/management/declared between
    enterprises, family ties between persons, ~10 % of equity held by persons, ~5 % dated, ~1 % exempt (P5).
    Equity into one company never sums above 100 %: each share is at most 1/(number of holders)."""
    k, m = spec.relations, world.n_parties
    if k == 0:
        return pl.DataFrame({c: pl.Series([], dtype=pl.String) for c in AFFILIATION_COLUMNS})
    n_persons = max(2, k // 40)
    draw = int(k * 1.3) + 10  # oversample, then drop repeated pairs and keep k
    relation = rng.choice(
        np.array(["equity", "control", "management", "declared", "family"]),
        size=draw,
        p=[0.85, 0.05, 0.02, 0.04, 0.04],
    )
    # Party keys: 0..m-1 enterprises, m.. persons. Holders are skewed (a few holding companies).
    holder = world.buyer_of_rank[zipf_sampler(m - spec.platforms, 0.8)(rng, draw)]
    a = np.where(rng.random(draw) < 0.10, m + rng.integers(0, n_persons, size=draw), holder)
    b = rng.integers(0, m, size=draw)
    is_family = relation == "family"
    a = np.where(is_family, m + rng.integers(0, n_persons, size=draw), a)
    b = np.where(is_family, m + rng.integers(0, n_persons, size=draw), b)
    # Persons hold equity or are family; control / management / declared link enterprises.
    enterprise_only = np.isin(relation, ["control", "management", "declared"])
    a = np.where(enterprise_only & (a >= m), holder, a)
    # No self-loops (issue 3 validation): move b to the next party of the same kind.
    same = a == b
    b = np.where(same & (b >= m), m + (b - m + 1) % n_persons, np.where(same, (b + 1) % m, b))
    # One record per (a, b): keep the first draw of each pair, then the first k.
    pair = a.astype(np.int64) * (m + n_persons) + b
    _, first = np.unique(pair, return_index=True)
    keep = np.sort(first)[:k]
    a, b, relation = a[keep], b[keep], relation[keep]
    n = keep.size
    is_equity = relation == "equity"
    holders_per_b = np.bincount(b[is_equity], minlength=m + n_persons)[b]
    share_bp = np.floor(rng.uniform(0.05, 1.0, size=n) * 10_000 / np.maximum(holders_per_b, 1)).astype(np.int64)
    # Basis points (1/10,000), at most 9,999 each (uniform < 1), so sums per b stay below 100 %.
    share_bp = np.maximum(share_bp, 1)
    dated = rng.random(n) < 0.05
    day0 = _epoch_day(date(2023, 1, 1))
    start = day0 + rng.integers(0, 4 * 365, size=n)
    length = rng.integers(30, 700, size=n)
    form = rng.integers(0, 3, size=n)  # from only / to only / both
    valid_from = np.where(dated & (form != 1), start, -1)
    valid_to = np.where(dated & (form != 0), start + length, -1)
    exempt = rng.random(n) < 0.01
    names = pl.concat([world.codes, _ids_series("P:", np.arange(n_persons), 7)])
    frame = pl.DataFrame(
        {
            "a_id": names.gather(a),
            "b_id": names.gather(b),
            "relation": relation,
            "share_bp": share_bp,
            "equity": is_equity,
            "valid_from": _date_text(valid_from),
            "has_from": valid_from >= 0,
            "valid_to": _date_text(valid_to),
            "has_to": valid_to >= 0,
            "exempt": exempt,
        }
    )
    return frame.select(
        "a_id",
        "b_id",
        "relation",
        pl.when("equity")
        .then(pl.lit("0.") + pl.col("share_bp").cast(pl.String).str.zfill(4))
        .otherwise(None)
        .alias("share"),
        pl.when("has_from").then("valid_from").otherwise(None).alias("valid_from"),
        pl.when("has_to").then("valid_to").otherwise(None).alias("valid_to"),
        pl.when("exempt").then(pl.lit("true")).otherwise(pl.lit("false")).alias("exempt"),
    )


def prior_awards_frame(spec: GenerateSpec, rng: np.random.Generator) -> pl.DataFrame:
    """prior_awards.csv: a few of the popular datasets already received an award (supplementary rule 2, P10.6)."""
    d = spec.dataset_count()
    n = max(1, d // 100)
    chosen = np.sort(rng.choice(min(d, 10 * n), size=n, replace=False))
    cents = rng.integers(1_000_00, 200_000_00, size=n)
    year = rng.integers(2023, 2027, size=n)
    return pl.DataFrame({"d": chosen, "year": year, "cents": cents}).select(
        _ids("DS", pl.col("d"), 7).alias("dataset_id"),
        pl.col("year").cast(pl.String),
        _money(pl.col("cents")).alias("amount"),
        pl.lit("synthetic prior programme").alias("source"),
    )


# ---------------------------------------------------------------------------------------------- trades
