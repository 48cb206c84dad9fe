"""Hand-made scenarios for the integrity codes (tests only): a small exchange, settled, its flags read back."""

from __future__ import annotations

from settlement.integrity.flags import year_flags
from tests.support.scenario import Y23, settle, world
from tests.support.world import sale, upload


def exchange(tmp_path, owners=("OWN1",), affiliations=None):
    """PLAT certified; dataset D<i> of owner OWN<i> (in the order given) certified from 2023-01-01."""
    datasets = [(f"D{o[3:]}", o, Y23, None) for o in owners]
    return world(tmp_path, datasets=datasets, affiliations=affiliations)


def buys(dataset: str, owner: str, buyers, amount="1000.00", at="2024-03-01T10:00:00", prefix=None) -> list[dict]:
    """One sale of ``dataset`` to each buyer (trade ids <prefix><buyer>)."""
    prefix = prefix or f"{dataset}-"
    return [sale(f"{prefix}{b}", b, amount, at, dataset=dataset, seller=owner) for b in buyers]


def flags_of(con, year: int = 2024, code: str | None = None):
    return [f for f in year_flags(con, year) if code is None or f.code == code]


def codes(con, year: int = 2024) -> set[str]:
    return {f.code for f in year_flags(con, year)}


def settle_with(con, trades: list[dict], year: int = 2024):
    upload(con, trades)
    return settle(con, year)
