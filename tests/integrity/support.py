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


def load_generated(tmp_path, folder, year: int = 2024):
    """Load a `settle generate` folder through the real registry and ingest stages, settle ``year``; with
    plants, approve that run (acknowledging its flags), ingest late_refunds.csv and settle again
    (REFUND_AFTER_APPROVAL)."""
    from settlement.core import store
    from settlement.inputs import registry
    from settlement.inputs.ingest import ingest_file

    db = tmp_path / "generated.duckdb"
    store.init(db)
    con = store.open_store(db)
    for kind in ("platforms", "datasets", "affiliations", "prior_awards"):
        assert registry.load_registry(con, kind, folder / f"{kind}.csv", loaded_by="test").status == "loaded", kind
    for name in ("trades.csv", "fraud_trades.csv"):
        if (folder / name).exists():
            assert ingest_file(con, folder / name, uploaded_by="test").status == "stored", name
    first = settle(con, year)
    if (folder / "late_refunds.csv").exists():  # the year is approved, then a refund arrives
        from settlement.lifecycle.review import approve_run

        approve_run(con, first.run_id, by="test reviewer", acknowledge_flags=True)
        assert ingest_file(con, folder / "late_refunds.csv", uploaded_by="test").status == "stored"
        settle(con, year)
    return con


def matches(flag, plant: dict) -> bool:
    """A flag finds a plant (fraud_plants.csv row) when it has the plant's code, names every party the
    plant lists and, when the plant names a dataset, is about that dataset."""
    return (flag.code == plant["code"] and set(plant["parties"].split(";")) <= set(flag.parties)
            and (not plant["dataset_id"] or flag.dataset_id == plant["dataset_id"]))
