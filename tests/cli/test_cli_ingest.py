"""CLI edge for ingest, uploads and load: exit codes and output of CONTRACT "Command line"."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from settlement.cli import app
from tests.support.ingest import PLATFORM, SELLER, csv_file, sale, write

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_ingest_exit_codes_and_reports(tmp_path):
    db = tmp_path / "c.duckdb"
    assert run("init", "--db", db).exit_code == 0
    good = csv_file(tmp_path, "good.csv", sale("t1"), sale("t2"))
    result = run("ingest", good, "--db", db)
    assert result.exit_code == 0
    assert result.output.splitlines()[:2] == [
        f"upload 1: good.csv (csv, {good.stat().st_size} bytes): stored",
        "  rows read 2, stored 2, duplicate 0, rejected 0",
    ]
    again = run("ingest", good, "--db", db)
    assert again.exit_code == 0 and "same bytes as upload 1" in again.output

    bad = csv_file(tmp_path, "bad.csv", sale("t3", "1.001"))
    result = run("ingest", bad, "--db", db, "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert (report["status"], report["rows_rejected"], report["errors"]) == ("rejected", 1, [
        {"row_number": 2, "column": "amount", "value": "1.001",
         "reason": "not a plain decimal with at most 2 decimals (digits and one '.')"}])


def test_user_errors_exit_1_with_one_line(tmp_path):
    db = tmp_path / "c.duckdb"
    result = run("ingest", tmp_path / "x.csv", "--db", db)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no such file: {tmp_path / 'x.csv'}"
    write(tmp_path, "x.csv", "a\n1\n")
    result = run("ingest", tmp_path / "x.csv", "--db", db)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: no database at {db}: run `settle init --db {db}` first"


def test_uploads_list_json_and_retract(tmp_path, monkeypatch):
    db = tmp_path / "c.duckdb"
    monkeypatch.setenv("SETTLE_DB", str(db))
    run("init")
    run("ingest", csv_file(tmp_path, "a.csv", sale("t1")))
    listed = json.loads(run("uploads", "list", "--format", "json").output)
    assert [(u["id"], u["file_name"], u["status"], u["rows_stored"], u["rows_duplicate"], u["rows_rejected"])
            for u in listed] == [(1, "a.csv", "stored", 1, 0, 0)]
    assert len(listed[0]["sha256"]) == 64
    result = run("uploads", "retract", "1")
    assert result.exit_code == 0 and result.output.strip() == "upload 1 (a.csv) retracted: 1 trades no longer count"
    result = run("uploads", "retract", "1")
    assert (result.exit_code, result.stderr.strip()) == (1, "error: upload 1 is already retracted")


def test_load_registry_exit_codes(tmp_path):
    db = tmp_path / "c.duckdb"
    run("init", "--db", db)
    ok = write(tmp_path, "p.csv", f"platform_id,name,certified_on,certified_until\n{PLATFORM},X,2023-01-01,\n")
    result = run("load", "platforms", ok, "--db", db)
    assert (result.exit_code, result.output.strip()) == (0, "platforms: load 1: 1 rows from p.csv")
    bad = write(tmp_path, "d.csv", f"dataset_id,owner_id,name,certified_on,certified_until\nD1,{SELLER}x,N,,\n")
    result = run("load", "datasets", bad, "--db", db)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "datasets: d.csv rejected, nothing loaded (1 of 1 rows have errors)",
        f"  row 2, column owner_id, value '{SELLER}x': not a unified social credit code: 19 characters, 18 expected",
    ]
