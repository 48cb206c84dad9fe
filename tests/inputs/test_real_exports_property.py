"""Property (issue 10): any valid small trade file, re-encoded as GB18030 and/or written with full-width digits
and thousands separators, stores exactly the same trades as its plain form."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.inputs import ingest
from tests.support.ingest import BUYER, BUYER2, HEADER, PLATFORM, SELLER, new_store

FULL_WIDTH = str.maketrans("0123456789:", "０１２３４５６７８９：")

rows = st.lists(st.tuples(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999999.99"), places=2),
    st.datetimes(min_value=__import__("datetime").datetime(2023, 1, 1),
                 max_value=__import__("datetime").datetime(2026, 12, 31)).map(lambda d: d.replace(microsecond=0)),
    st.sampled_from([BUYER, BUYER2]),
), min_size=1, max_size=6)


def _grouped(amount: Decimal) -> str:
    return f"{amount:,.2f}"


def _store(lines: list[str], encoding: str) -> list[tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
        con = new_store(Path(tmp))
        try:
            report = ingest.ingest_file(con, path, uploaded_by="p")
            assert report.status == "stored", report
            return con.execute("SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, traded_at, local_date, "
                               "amount, kind, row_number FROM trades ORDER BY row_number").fetchall()
        finally:
            con.close()


@settings(max_examples=20, deadline=None)
@given(rows=rows, gb=st.booleans(), full_width=st.booleans(), separators=st.booleans(), slashes=st.booleans())
def test_export_forms_store_the_same_trades_as_the_plain_form(rows, gb, full_width, separators, slashes):
    plain, export = [HEADER], [HEADER]
    for i, (amount, when, buyer) in enumerate(rows):
        ts = when.strftime("%Y-%m-%dT%H:%M:%S")
        plain.append(f"t{i},{PLATFORM},数据集{i % 2},{SELLER},{buyer},{ts},{amount},sale,")
        money = f'"{_grouped(amount)}"' if separators else str(amount)
        stamp = f"{when.year}/{when.month}/{when.day} {when.hour}:{when:%M:%S}" if slashes else ts
        if full_width:
            money, stamp = money.translate(FULL_WIDTH), stamp.translate(FULL_WIDTH)
        export.append(f"t{i},{PLATFORM},数据集{i % 2},{SELLER},{buyer},{stamp},{money},sale,")
    assert _store(export, "gb18030" if gb else "utf-8") == _store(plain, "utf-8")
