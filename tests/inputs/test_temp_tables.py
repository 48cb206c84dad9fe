"""The TEMP tables of the input stage (issue 9 item 2): every ingest, registry load and rejected-rows export
names its TEMP tables with a prefix of its own (``settlement.core.sql.temp_tables``) and leaves none behind,
whether it stores, rejects or fails half-way; two ingests on one connection cannot mix their rows."""

from __future__ import annotations

import re
import threading

import pytest

from settlement.inputs import errors_out, ingest, registry
from settlement.inputs.classify import Counts, classify_rows, first_errors, upload_counts
from settlement.inputs.common import OPTIONAL, REQUIRED, ingest_tables
from settlement.inputs.parse import parse_and_check_rows
from settlement.inputs.tabular import close_source, file_facts, open_source
from tests.support.ingest import (
    BUYER, PLATFORM, SELLER, code, csv_file, errors_of, sale, trades, write,
)

FULL_PATH_TABLES = {"staging_t", "distinct_codes", "bad_codes", "row_errors", "repeated_keys", "repeats",
                    "stored_match", "set_errors", "held_back", "refund_checks"}
FULL_PATH_VIEWS = {"staging", "candidates"}
BAD_AMOUNT = "not a plain decimal with at most 2 decimals (digits and one '.')"


def temp_objects(con) -> tuple[list[str], list[str]]:
    """The connection's TEMP tables and TEMP views (registered frames included), sorted."""
    tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary ORDER BY 1").fetchall()
    views = con.execute("SELECT view_name FROM duckdb_views() WHERE temporary AND NOT internal ORDER BY 1").fetchall()
    return [t for (t,) in tables], [v for (v,) in views]


def names_at(con, stage: str) -> tuple[list[tuple[str, str]], ingest.Progress]:
    """A progress callback that records the TEMP objects that exist when the ingest reaches ``stage``."""
    seen: list[tuple[str, str]] = []

    def step(reached: str) -> None:
        if reached == stage:
            tables, views = temp_objects(con)
            seen.extend([("table", t) for t in tables] + [("view", v) for v in views])
    return seen, step


def split_prefix(seen: list[tuple[str, str]]) -> tuple[set[str], dict[str, set[str]]]:
    """The prefixes of the names (``_<8 hex>_<name>``) and the bare names per kind."""
    prefixes, bare = set(), {"table": set(), "view": set()}
    for kind, name in seen:
        match = re.fullmatch(r"_([0-9a-f]{8})_(\w+)", name)
        assert match, name
        prefixes.add(match.group(1))
        bare[kind].add(match.group(2))
    return prefixes, bare


def test_full_path_names_carry_one_prefix_per_ingest_and_are_dropped(con, tmp_path):
    first = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "1.234"))
    second = csv_file(tmp_path, "b.csv", sale("t3"), sale("t4", "1.234"))
    seen_a, step_a = names_at(con, "storing")
    report_a = ingest.ingest_file(con, first, uploaded_by="tester", progress=step_a)
    seen_b, step_b = names_at(con, "storing")
    report_b = ingest.ingest_file(con, second, uploaded_by="tester", accept_valid=True, progress=step_b)
    assert (report_a.status, report_b.status) == ("rejected", "partial")
    assert errors_of(report_a) == [(3, "amount", "1.234", BAD_AMOUNT)]
    assert errors_of(report_b) == [(3, "amount", "1.234", BAD_AMOUNT)]
    prefixes_a, bare_a = split_prefix(seen_a)
    prefixes_b, bare_b = split_prefix(seen_b)
    assert len(prefixes_a) == 1 and len(prefixes_b) == 1 and prefixes_a != prefixes_b
    assert bare_a == bare_b == {"table": FULL_PATH_TABLES, "view": FULL_PATH_VIEWS}
    assert temp_objects(con) == ([], [])
    assert [t[0] for t in trades(con)] == ["t3"]


def test_fast_path_makes_no_temp_table_and_leaves_none(con, tmp_path):
    seen, step = names_at(con, "storing")
    report = ingest.ingest_file(con, csv_file(tmp_path, "a.csv", sale("t1"), sale("t2")), uploaded_by="tester",
                                progress=step)
    assert (report.status, report.rows_stored) == ("stored", 2)
    assert seen == []
    assert temp_objects(con) == ([], [])


@pytest.mark.parametrize("fmt", ["xlsx", "parquet", "jsonl"])
def test_other_formats_leave_no_temp_table_or_registered_frame(con, tmp_path, fmt):
    import polars as pl

    frame = pl.DataFrame({"trade_id": ["t1"], "platform_id": [PLATFORM], "dataset_id": ["DS1"],
                          "seller_id": [SELLER], "buyer_id": [BUYER], "traded_at": ["2024-03-01T10:00:00"],
                          "amount": ["1.50"]})
    path = tmp_path / f"a.{fmt}"
    {"xlsx": frame.write_excel, "parquet": frame.write_parquet, "jsonl": frame.write_ndjson}[fmt](path)
    report = ingest.ingest_file(con, path, uploaded_by="tester")
    assert (report.status, report.rows_stored) == ("stored", 1)
    assert temp_objects(con) == ([], [])


def test_a_file_rejected_whole_leaves_no_temp_table(con, tmp_path):
    report = ingest.ingest_file(con, write(tmp_path, "h.csv", "trade_id,platform_id\n"), uploaded_by="tester")
    assert report.status == "rejected"
    assert report.file_error == ("missing required columns dataset_id, seller_id, buyer_id, traded_at, amount; "
                                 "found: trade_id, platform_id")
    assert temp_objects(con) == ([], [])


def test_an_ingest_that_fails_half_way_leaves_no_temp_table_and_stores_nothing(con, tmp_path, monkeypatch):
    path = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "1.234"))

    def fail(stage: str) -> None:
        if stage == "storing":  # every TEMP table of the full path exists by now
            raise RuntimeError("stopped at storing")
    with pytest.raises(RuntimeError, match="^stopped at storing$"):
        ingest.ingest_file(con, path, uploaded_by="tester", accept_valid=True, progress=fail)
    assert temp_objects(con) == ([], [])

    def broken_record(*_args, **_kwargs) -> None:  # inside the store transaction, after the rows are inserted
        raise RuntimeError("digest failed")
    monkeypatch.setattr(ingest.digests, "record", broken_record)
    with pytest.raises(RuntimeError, match="^digest failed$"):
        ingest.ingest_file(con, path, uploaded_by="tester", accept_valid=True)
    assert temp_objects(con) == ([], [])
    assert con.execute("SELECT count(*) FROM uploads").fetchall() == [(0,)]
    assert trades(con) == []


def test_two_ingests_interleaved_on_one_connection_keep_their_rows_apart(con, tmp_path):
    """The stages take their table names: two ingests' stages run in turn on one connection without mixing."""
    paths = (csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "1.234"), sale("t3")),
             csv_file(tmp_path, "b.csv", sale("u1", "-5")))
    with ingest_tables(con) as one, ingest_tables(con) as two:
        sources = [open_source(con, file_facts(p), required=REQUIRED, optional=OPTIONAL, name=t.source_view)
                   for p, t in zip(paths, (one, two))]
        try:
            parsed = [parse_and_check_rows(con, s, platform_scope=None, tables=t) for s, t in zip(sources, (one, two))]
        finally:
            for source in sources:
                close_source(con, source)
        for tables in (one, two):
            classify_rows(con, tables)
        assert [p.rows for p in parsed] == [3, 1]
        assert [upload_counts(con, t) for t in (one, two)] == [Counts(3, 1, 2, 1), Counts(1, 1, 0, 1)]
        assert [(e.row_number, e.column, e.value) for e in first_errors(con, one, 10)] == [(3, "amount", "1.234")]
        assert [(e.row_number, e.column, e.value) for e in first_errors(con, two, 10)] == [(2, "amount", "-5")]
        assert con.execute(f"SELECT trade_id FROM {one.candidates} ORDER BY rn").fetchall() == [("t1",), ("t3",)]
        assert con.execute(f"SELECT count(*) FROM {two.candidates}").fetchall() == [(0,)]
    assert temp_objects(con) == ([], [])


def test_two_threads_with_their_own_cursors_ingest_into_one_store(con, tmp_path):
    """Each thread its own cursor (its own DuckDB connection): the process lock serialises the writers, so
    both uploads land whole, one on the fast path and one (a bad row, accept_valid) on the full path."""
    clean = csv_file(tmp_path, "clean.csv", *(sale(f"c{i}") for i in range(50)))
    mixed = csv_file(tmp_path, "mixed.csv", *(sale(f"m{i}", "1.234" if i == 7 else "2.00") for i in range(50)))
    barrier = threading.Barrier(2)
    reports: dict[str, ingest.UploadReport] = {}
    failures: list[BaseException] = []

    def run(path, accept_valid: bool) -> None:
        cursor = con.cursor()
        try:
            barrier.wait()
            reports[path.name] = ingest.ingest_file(cursor, path, uploaded_by="tester", accept_valid=accept_valid)
            assert temp_objects(cursor) == ([], [])
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread)
            failures.append(exc)
        finally:
            cursor.close()
    threads = [threading.Thread(target=run, args=(clean, False)), threading.Thread(target=run, args=(mixed, True))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    counts = {name: (r.status, r.rows_read, r.rows_stored, r.rows_rejected) for name, r in reports.items()}
    assert counts == {"clean.csv": ("stored", 50, 50, 0), "mixed.csv": ("partial", 50, 49, 1)}
    assert errors_of(reports["mixed.csv"]) == [(9, "amount", "1.234", BAD_AMOUNT)]
    stored = con.execute(
        "SELECT u.file_name, count(*), sum(t.amount)::VARCHAR, min(t.row_number), max(t.row_number) "
        "FROM trades t JOIN uploads u ON u.id = t.upload_id GROUP BY ALL ORDER BY 1").fetchall()
    assert stored == [("clean.csv", 50, "5000.00", 2, 51), ("mixed.csv", 49, "98.00", 2, 51)]
    assert sorted(reports[n].upload_id for n in reports) == [1, 2]


def test_registry_loads_leave_no_temp_table(con, tmp_path):
    header = "dataset_id,owner_id,name,certified_on,certified_until\n"
    good = write(tmp_path, "d.csv", header + f"DS1,{code(9)},one,2023-01-01,2026-12-31\n")
    bad = write(tmp_path, "e.csv", header + "DS2,12345,two,2023-01-01,2026-12-31\n")
    assert registry.load_registry(con, "datasets", good, loaded_by="tester").status == "loaded"
    report = registry.load_registry(con, "datasets", bad, loaded_by="tester")
    assert (report.status, errors_of(report)) == ("rejected", [
        (2, "owner_id", "12345", "not a unified social credit code: 5 characters, 18 expected")])
    assert temp_objects(con) == ([], [])


def test_rejected_rows_export_leaves_no_temp_table(con, tmp_path):
    path = csv_file(tmp_path, "a.csv", sale("t1"), sale("t2", "1.234"))
    report = ingest.ingest_file(con, path, uploaded_by="tester")
    out = tmp_path / "rejected.csv"
    assert errors_out.write_rejected_rows(con, report.upload_id, path, out) == 1
    assert out.read_text(encoding="utf-8-sig").splitlines()[1].endswith(f",2024-03-01T10:00:00,1.234,sale,,amount,"
                                                                        f"{BAD_AMOUNT}")
    assert temp_objects(con) == ([], [])
