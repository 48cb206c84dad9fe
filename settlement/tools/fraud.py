"""Planted subsidy-farming patterns and the realistic shape for `settle generate` (issue 13 item 4).

Owns: ``realistic_affiliations`` (corporate groups that never join an owner to a buyer or two owners, so
clean data looks like an honest exchange) and ``plant`` (every integrity pattern of docs/integrity.md,
``each`` instances per code, on fresh parties and datasets of their own, seeded), written by
``settlement.tools.generate`` as ``fraud_trades.csv`` (ingest with the other trade files),
``late_refunds.csv`` (ingest AFTER a run of 2024 is approved: REFUND_AFTER_APPROVAL) and
``fraud_plants.csv`` (the manifest: code, instance, dataset_id, parties that a matching flag must name).
Plants are few rows, built in plain Python. Must not import the CLI, the API or the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from settlement.tools.credit_codes import credit_codes

PLANT_SERIAL_BASE = 99_000_000  # plant parties: credit codes far above any generated party serial
PLANT_YEAR = 2024
MANIFEST_COLUMNS = ("code", "instance", "dataset_id", "parties", "note")


def realistic_affiliations(relations: int, owners: np.ndarray, buyers: np.ndarray, codes: pl.Series,
                           rng: np.random.Generator) -> pl.DataFrame:
    """Equity records: a person holds 51 % of each member of a buyer group (2–5 buyers), and 60 % of one
    owner (an owner's group holds no other owner and no buyer). About ``relations`` records."""
    owner_records = min(len(owners), relations // 10)
    buyer_records = max(relations - owner_records, 0)
    members = rng.permutation(buyers)[: min(buyer_records, len(buyers))]
    sizes = rng.integers(2, 6, size=max(1, len(members) // 2 + 1))
    group_of_member = np.repeat(np.arange(sizes.size), sizes)[: len(members)]
    held_owners = rng.permutation(owners)[:owner_records]
    persons = [f"P:B{g:07d}" for g in group_of_member] + [f"P:O{i:07d}" for i in range(owner_records)]
    targets = np.concatenate([members, held_owners]).astype(np.int64)
    shares = ["0.5100"] * len(members) + ["0.6000"] * owner_records
    return pl.DataFrame({
        "a_id": pl.Series(persons, dtype=pl.String), "b_id": codes.gather(targets),
        "relation": pl.Series(["equity"] * len(persons), dtype=pl.String),
        "share": pl.Series(shares, dtype=pl.String), "valid_from": pl.Series([None] * len(persons), dtype=pl.String),
        "valid_to": pl.Series([None] * len(persons), dtype=pl.String),
        "exempt": pl.Series(["false"] * len(persons), dtype=pl.String),
    })


@dataclass
class Plants:
    """What ``plant`` adds: rows in the CONTRACT layouts, and the manifest."""

    datasets: list[dict] = field(default_factory=list)
    affiliations: list[dict] = field(default_factory=list)
    trades: list[dict] = field(default_factory=list)
    late_refunds: list[dict] = field(default_factory=list)
    manifest: list[dict] = field(default_factory=list)


class _Builder:
    def __init__(self, platform: str, rng: np.random.Generator, each: int):
        self.platform, self.rng, self.each = platform, rng, each
        self.out = Plants()
        self._serial = PLANT_SERIAL_BASE
        self._trade = 0

    def party(self) -> str:
        self._serial += 1
        return str(credit_codes(np.array([self._serial]))[0])

    def dataset(self, tag: str, owner: str) -> str:
        ds = f"DSF{tag}{len(self.out.datasets):05d}"
        self.out.datasets.append({"dataset_id": ds, "owner_id": owner, "name": f"Planted {tag}",
                                  "certified_on": "2023-05-08", "certified_until": None})
        return ds

    def sale(self, ds: str, owner: str, buyer: str, amount: str, day: str) -> str:
        self._trade += 1
        tid = f"F{self._trade:09d}"
        minute = int(self.rng.integers(0, 600))
        self.out.trades.append({"trade_id": tid, "platform_id": self.platform, "dataset_id": ds, "seller_id": owner,
                                "buyer_id": buyer, "traded_at": f"{day}T{8 + minute // 60:02d}:{minute % 60:02d}:00",
                                "amount": amount, "kind": "sale", "ref_trade_id": None})
        return tid

    def genuine(self, ds: str, owner: str, n: int, amount: str = "2000.00", times: int = 2) -> None:
        for _ in range(n):
            buyer = self.party()
            for k in range(times):
                self.sale(ds, owner, buyer, amount, f"{PLANT_YEAR}-0{3 + k}-1{k}")

    def crossed_pair(self, tag: str, genuine: int, there: tuple[str, str], back: tuple[str, str]) -> list[str]:
        """Two owners with a dataset each (``genuine`` honest callers), each buying the other's dataset once:
        ``there`` is (amount, day) of the first owner's sale to the second, ``back`` the sale the other way."""
        o1, o2 = self.party(), self.party()
        d1, d2 = self.dataset(tag, o1), self.dataset(tag, o2)
        self.genuine(d1, o1, genuine)
        self.genuine(d2, o2, genuine)
        self.sale(d1, o1, o2, *there)
        self.sale(d2, o2, o1, *back)
        return [o1, o2]

    def note(self, code: str, i: int, parties: list[str], note: str, dataset: str | None = None) -> None:
        self.out.manifest.append({"code": code, "instance": i, "dataset_id": dataset,
                                  "parties": ";".join(sorted(parties)), "note": note})


def _thin(b: _Builder, i: int) -> None:
    owner, shell = b.party(), b.party()
    ds = b.dataset("THIN", owner)
    b.genuine(ds, owner, 3, "3000.00", 2)  # base 18,000.00
    b.sale(ds, owner, shell, "5.00", f"{PLANT_YEAR}-07-0{1 + i % 9}")  # 5.00 < 2 % of the base
    b.note("THIN_THRESHOLD", i, [owner, shell], "a 4th caller group paying 5.00", ds)


def _late(b: _Builder, i: int) -> None:
    owner, shell = b.party(), b.party()
    ds = b.dataset("LATE", owner)
    b.genuine(ds, owner, 3, "2000.00", 3)  # base 18,000.00
    b.sale(ds, owner, shell, "600.00", f"{PLANT_YEAR}-12-2{i % 9}")  # 3.2 %: not thin, late and ≤ 10 %
    b.note("LATE_CALLERS", i, [owner, shell], "a 4th caller group buying once in the last 14 days", ds)


def _reciprocal(b: _Builder, i: int) -> None:
    owners = b.crossed_pair("RECI", 3, ("1500.00", f"{PLANT_YEAR}-02-1{i % 9}"),
                            ("900.00", f"{PLANT_YEAR}-08-1{i % 9}"))  # months apart, not comparable: no round trip
    b.note("RECIPROCAL_CALLERS", i, owners, "two owners each the 4th caller of the other")


def _ring(b: _Builder, i: int) -> None:
    owners = [b.party() for _ in range(3)]
    sets = [b.dataset("RING", o) for o in owners]
    for k, (ds, owner) in enumerate(zip(sets, owners)):
        b.genuine(ds, owner, 3)
        b.sale(ds, owner, owners[(k + 1) % 3], "1500.00", f"{PLANT_YEAR}-0{2 + 3 * k}-2{i % 9}")
    b.note("CALLER_RING", i, owners, "three owners, each the 4th caller of the next")


def _shared(b: _Builder, i: int) -> None:
    shells = [b.party() for _ in range(4)]
    owners = [b.party() for _ in range(3)]
    for owner in owners:
        ds = b.dataset("SHAR", owner)
        for k, shell in enumerate(shells):
            b.sale(ds, owner, shell, f"{3000 + 100 * k}.00", f"{PLANT_YEAR}-0{4 + k}-0{1 + i % 9}")
    b.note("SHARED_CALLER_SET", i, owners + shells, "four shells are the only callers of three owners' datasets")


def _round_trip(b: _Builder, i: int) -> None:
    owners = b.crossed_pair("ROUN", 1, ("50000.00", f"{PLANT_YEAR}-04-02"), ("48500.00", f"{PLANT_YEAR}-04-2{i % 9}"))
    b.note("ROUND_TRIP", i, owners, "50,000.00 out, 48,500.00 back within 30 days")


def _price(b: _Builder, i: int) -> None:
    owner, big = b.party(), b.party()
    ds = b.dataset("PRIC", owner)
    b.genuine(ds, owner, 12, "5000.00", 1)
    b.sale(ds, owner, big, "120000.00", f"{PLANT_YEAR}-06-1{i % 9}")  # 24× the median 5,000.00
    b.note("PRICE_OUTLIER", i, [owner, big], "one sale at 24× the dataset's median", ds)


def _cap(b: _Builder, i: int) -> None:
    parent, o1, o2 = f"P:FRAUD{i:05d}", b.party(), b.party()
    for owner in (o1, o2):
        b.out.affiliations.append({"a_id": parent, "b_id": owner, "relation": "equity", "share": "0.6000",
                                   "valid_from": None, "valid_to": None, "exempt": "false"})
        ds = b.dataset("CAPS", owner)
        b.genuine(ds, owner, 5, "1400000.00", 1)  # 10 % × 7,000,000.00 = 700,000.00 each
    b.note("CAP_SPLITTING", i, [o1, o2], "two subsidiaries of one person receive 1,400,000.00 together")


def _refund(b: _Builder, i: int) -> None:
    owner = b.party()
    ds = b.dataset("REFU", owner)
    buyers = [b.party() for _ in range(5)]
    first = [b.sale(ds, owner, x, "3000.00", f"{PLANT_YEAR}-05-1{k}") for k, x in enumerate(buyers)]
    b.out.late_refunds.append({"trade_id": f"FR{i:08d}", "platform_id": b.platform, "dataset_id": ds,
                               "seller_id": owner, "buyer_id": buyers[0], "traded_at": f"{PLANT_YEAR + 1}-01-20T10:00:00",
                               "amount": "2500.00", "kind": "refund", "ref_trade_id": first[0]})
    b.note("REFUND_AFTER_APPROVAL", i, [owner, buyers[0]], "late_refunds.csv: a refund stored after a run of 2024 was approved", ds)


PLANTERS = (_thin, _late, _reciprocal, _ring, _shared, _round_trip, _price, _cap, _refund)


def plant(platform: str, seed: int, each: int) -> Plants:
    """``each`` instances of every pattern, on fresh parties and datasets, dated in 2024 (seeded)."""
    b = _Builder(platform, np.random.default_rng([seed, 13]), each)
    for planter in PLANTERS:
        for i in range(each):
            planter(b, i)
    return b.out
