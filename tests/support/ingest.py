"""Shared helpers for the ingest tests: valid credit codes, a fresh store, CSV writing."""

from __future__ import annotations

from pathlib import Path

from stdnum.cn import uscc

from settlement.core import store


def code(n: int) -> str:
    """A valid unified social credit code numbered n (check character from python-stdnum)."""
    base = f"91330106{n:09d}"
    return base + uscc.calc_check_digit(base)


PLATFORM, SELLER, BUYER, BUYER2, OTHER_PLATFORM = code(1), code(2), code(3), code(4), code(5)
HEADER = "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,kind,ref_trade_id"


def new_store(tmp_path: Path):
    path = tmp_path / "test.duckdb"
    store.init(path)
    return store.open_store(path)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def sale(trade_id: str, amount: str = "100.00", *, ts: str = "2024-03-01T10:00:00", buyer: str = BUYER,
         platform: str = PLATFORM, dataset: str = "DS1") -> str:
    return f"{trade_id},{platform},{dataset},{SELLER},{buyer},{ts},{amount},sale,"


def refund(trade_id: str, ref: str, amount: str, *, ts: str = "2024-04-01T10:00:00", platform: str = PLATFORM) -> str:
    return f"{trade_id},{platform},DS1,{SELLER},{BUYER},{ts},{amount},refund,{ref}"


def csv_file(tmp_path: Path, name: str, *rows: str) -> Path:
    return write(tmp_path, name, "\n".join([HEADER, *rows]) + "\n")


def trades(con) -> list[tuple]:
    return con.execute(
        "SELECT trade_id, platform_id, amount::VARCHAR, kind, ref_trade_id, upload_id, retracted FROM trades "
        "ORDER BY upload_id, row_number").fetchall()


def errors_of(report) -> list[tuple]:
    """A report's errors as (row, column, value, reason) tuples, for exact comparison."""
    return [(e.row_number, e.column, e.value, e.reason) for e in report.errors]
