"""The store: init, forward migrations, COMMENTs on every table and column (CONTRACT regulator schema)."""

from __future__ import annotations

import pytest

from settlement.core import store

CONTRACT_SCHEMA = {
    "trades": ["trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at", "local_date", "amount",
               "kind", "ref_trade_id", "upload_id", "retracted"],
    "uploads": ["id", "file_name", "sha256", "bytes", "rows_read", "rows_stored", "rows_duplicate", "rows_rejected",
                "status", "uploaded_by", "uploaded_at"],
    "rejected_rows": ["upload_id", "row_number", "column_name", "value", "reason"],
}


def test_init_creates_every_migration_once(tmp_path):
    path = tmp_path / "s.duckdb"
    version, applied = store.init(path)
    expected = [v for v, _, _ in store.migrations()]
    assert applied == expected and version == expected[-1]
    assert store.init(path) == (version, [])


def test_every_table_view_and_column_has_a_comment(tmp_path):
    path = tmp_path / "s.duckdb"
    store.init(path)
    con = store.open_store(path)
    missing_tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND NOT internal AND comment IS NULL "
        "UNION ALL SELECT view_name FROM duckdb_views() WHERE schema_name = 'main' AND NOT internal AND comment IS NULL"
    ).fetchall()
    missing_columns = con.execute(
        "SELECT table_name || '.' || column_name FROM duckdb_columns() WHERE schema_name = 'main' AND NOT internal "
        "AND comment IS NULL ORDER BY 1").fetchall()
    assert missing_tables == [] and missing_columns == []


@pytest.mark.parametrize(("table", "columns"), sorted(CONTRACT_SCHEMA.items()))
def test_contract_names_exist(tmp_path, table, columns):
    path = tmp_path / "s.duckdb"
    store.init(path)
    con = store.open_store(path)
    found = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]).fetchall()]
    assert [c for c in found if c in columns] == columns


def test_opening_a_missing_store_says_run_init(tmp_path):
    with pytest.raises(store.StoreNotInitialised, match="run `settle init"):
        store.open_store(tmp_path / "nope.duckdb")
