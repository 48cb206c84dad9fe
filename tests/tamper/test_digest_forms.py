"""Row digests have two implementations (issue 14): an upload hashes its chunks in Python (``chunk_digests``,
faster), verify recomputes them in SQL (``chunks_sql``, the documented form). They must give the same
chunks, byte for byte, whatever the stored rows hold: non-ASCII text, separators and newlines inside fields,
NULLs, gaps in row numbers, chunks cut by batches, rows of other uploads in between."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.core import store
from settlement.inputs import digests

TEXT = st.lists(st.sampled_from(list("aZ09|:-\n\r\t ,\"'\\\u00a0") + ["数据", "交易", "😀", "e\u0301"]),
                max_size=12).map("".join)
ROW = st.tuples(TEXT, TEXT, st.one_of(st.none(), TEXT),
                st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False),
                st.integers(min_value=0, max_value=3 * 10**9))


def sql_chunks(con, source: str, ref_id: int) -> list[tuple]:
    rows = con.execute(f"SELECT ref_id, chunk, first_row, last_row, rows, digest FROM ({digests.chunks_sql(source, 'ref_id = $id')}) "
                       "ORDER BY chunk", dict(source=source, id=ref_id)).fetchall()
    return [tuple(r) for r in rows]


def python_chunks(con, source: str, ref_id: int) -> list[tuple]:
    found = []
    for batch in digests._batches(con, source, ref_id):
        found += [tuple(r.values()) for r in digests.chunk_digests(con, source, batch).to_pylist()]
    return found


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = tmp_path_factory.mktemp("digests") / "s.duckdb"
    store.init(path)
    connection = store.open_store(path)
    yield connection
    connection.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=30), gaps=st.lists(st.integers(1, 5000), min_size=30, max_size=30),
       batch_chunks=st.sampled_from([1, 2, 256]))
def test_python_and_sql_chunks_are_the_same(con, monkeypatch_module, rows, gaps, batch_chunks) -> None:
    monkeypatch_module.setattr(digests, "BATCH_ROWS", batch_chunks * digests.CHUNK_ROWS)
    con.execute("DELETE FROM trade_rows")
    number, values = 0, []
    for (text, other, ref, amount, seconds), gap in zip(rows, gaps):
        number += gap  # row numbers with gaps: several rows per chunk, empty chunks, chunks cut by batches
        at = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds, microseconds=seconds % 997)
        values.append((text, other, text + other, other, text, at, at.date(), Decimal(amount), "CNY", "sale", ref, 7,
                       number))
    values.append(("OTHER", "P", "D", "S", "B", dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.date(2024, 1, 1),
                   Decimal("1.00"), "CNY", "sale", None, 8, 3))  # another upload's row among them
    con.executemany("INSERT INTO trade_rows VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    expected = sql_chunks(con, "upload", 7)
    assert python_chunks(con, "upload", 7) == expected
    assert sum(r[4] for r in expected) == len(rows)


def test_a_registry_load_and_an_upload_without_rows(con) -> None:
    con.execute("DELETE FROM affiliation_versions")
    con.execute("""INSERT INTO affiliation_versions VALUES (5, 1, 0, '甲', 'B', 'equity', 0.5, DATE '2024-01-01', NULL, false),
                   (5, 2, 9000, 'A|1', '乙:2', 'control', NULL, NULL, DATE '2024-12-31', true)""")
    assert python_chunks(con, "affiliations", 5) == sql_chunks(con, "affiliations", 5)
    assert [r[1] for r in python_chunks(con, "affiliations", 5)] == [0, 2]
    assert python_chunks(con, "upload", 12345) == [] == sql_chunks(con, "upload", 12345)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch
