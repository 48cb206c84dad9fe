"""The shape of `settle` itself (CONTRACT "Command line", issue 9 item 3, issue 8 item 5): global --db,
-h, --version, exit 64 on usage errors, exit 1 on unknown ids, help panels in pipeline order, and no run
recorded for a year outside the policy window."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from settlement.cli import PIPELINE
from settlement.cli import app
from settlement.core import store
from settlement.explain import explain_dataset
from tests.support.scenario import PARAMS
from tests.support.world import load_datasets, load_platforms

runner = CliRunner()
SETTLE = Path(sys.executable).with_name("settle")


def settle(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="settle")


def runs(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM settlement_runs").fetchall()[0][0]
    finally:
        con.close()


def test_db_before_or_after_the_command_is_the_same(tmp_path, monkeypatch):
    monkeypatch.delenv("SETTLE_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # the default ./settlement.duckdb would land here: it must not be used
    db = tmp_path / "x.duckdb"
    assert settle("--db", db, "init").exit_code == 0
    before = settle("--db", db, "run", "--year", "2024")
    after = settle("run", "--year", "2024", "--db", db)
    assert (before.exit_code, after.exit_code) == (0, 0), before.output + after.output
    assert before.output.strip() == "year 2024: run 1 appended nothing (targets unchanged)"
    assert after.output.strip() == "year 2024: run 2 appended nothing (targets unchanged)"
    assert runs(db) == 2 and not (tmp_path / "settlement.duckdb").exists()


def test_the_commands_own_db_wins_over_the_global_one(tmp_path):
    used, ignored = tmp_path / "used.duckdb", tmp_path / "ignored.duckdb"
    settle("init", "--db", used)
    settle("init", "--db", ignored)
    assert settle("--db", ignored, "run", "--year", "2024", "--db", used).exit_code == 0
    assert (runs(used), runs(ignored)) == (1, 0)


def test_dash_h_is_help_everywhere():
    for args in ([], ["run"], ["explain", "dataset"], ["ledger", "export"]):
        short, long = settle(*args, "-h"), settle(*args, "--help")
        assert short.exit_code == 0 and short.output == long.output
        assert "Usage: settle" in short.output


def test_version_prints_the_package_version():
    result = settle("--version")
    assert (result.exit_code, result.output) == (
        0, f"settle {importlib.metadata.version('data-exchange-settlement')}\n")


def test_unknown_option_or_command_or_bad_value_exits_64_with_the_usage(tmp_path):
    result = settle("run", "--bogus")
    assert result.exit_code == 64
    assert result.stderr == (
        "Usage: settle run [OPTIONS]\nTry 'settle run -h' for help.\n\nError: No such option: --bogus\n")
    result = settle("zzz")
    assert (result.exit_code, result.stderr.splitlines()[-1]) == (64, "Error: No such command 'zzz'.")
    result = settle("payouts", "--format", "xml", "--db", tmp_path / "x.duckdb")
    assert result.exit_code == 64 and "Invalid value for '--format'" in result.stderr
    assert result.stdout == ""


def test_the_installed_script_exits_64_on_a_usage_error_and_keeps_exit_1(tmp_path):
    usage = subprocess.run([SETTLE, "run", "--bogus"], capture_output=True, text=True)
    assert (usage.returncode, usage.stdout) == (64, "")
    assert usage.stderr.endswith("Error: No such option: --bogus\n")
    missing = subprocess.run([SETTLE, "--db", tmp_path / "none.duckdb", "payouts"], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no database at ")


def _world(tmp_path) -> Path:
    """A store with dataset D1 and platform PLAT registered, no trades, 2024 settled (nothing to pay)."""
    db = tmp_path / "t.duckdb"
    store.init(db)
    con = store.open_store(db)
    load_platforms(con, [("PLAT", date(2023, 1, 1), None)])
    load_datasets(con, [("D1", "OWN1", date(2023, 1, 1), None)])
    con.close()
    assert settle("run", "--year", "2024", "--db", db).exit_code == 0
    return db


def test_unknown_dataset_or_platform_exits_1_with_one_line(tmp_path):
    db = _world(tmp_path)
    result = settle("explain", "dataset", "NOPE", "--year", "2024", "--db", db)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "error: no dataset NOPE\n")
    result = settle("explain", "platform", "nope", "--year", "2024", "--db", db)
    assert (result.exit_code, result.stderr) == (1, "error: no platform NOPE\n")  # P4: codes upper-cased
    result = settle("uploads", "retract", "7", "--db", db)
    assert (result.exit_code, result.stderr) == (1, "error: no upload with id 7\n")


def test_a_dataset_without_eligible_sales_shows_the_caller_threshold(tmp_path):
    db = _world(tmp_path)
    result = settle("explain", "dataset", "D1", "--year", "2024", "--db", db)
    assert result.exit_code == 0, result.output
    assert "unrelated caller groups: 0 (needs more than 3, P10.4) -> does not qualify: 4 more needed" in result.output
    con = store.open_store(db, read_only=True)
    x = explain_dataset(con, "D1", 2024, params=PARAMS)
    con.close()
    assert (x.caller_threshold, x.callers_missing, x.eligible_sales) == (3, 4, 0)


def test_run_of_a_year_outside_the_policy_window_warns_and_records_nothing(tmp_path):
    db = _world(tmp_path)
    assert runs(db) == 1
    result = settle("run", "--year", "2027", "--db", db)
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == ("warning: 2027 has no in-scope day (policy window 2023-05-08 to 2026-05-08, P2): "
                             "nothing settled, no run recorded\n")
    assert runs(db) == 1


def test_help_lists_the_panels_and_commands_in_pipeline_order():
    result = settle("--help")
    assert result.exit_code == 0
    panels = re.findall(r"╭─ (\w+) ─", result.output)
    assert panels == ["Options", "Setup", "Inputs", "Settle", "Audit", "Server", "Tools"]
    commands = [c for c in re.findall(r"^│ (\w[\w-]*) ", result.output, flags=re.M) if not c.startswith("-")]
    # the help shows exactly the declared pipeline, panel by panel, in its order
    assert commands == [name for panel in PIPELINE.values() for name in panel]
    assert commands[:8] == ["init", "load", "ingest", "uploads", "run", "explain", "affiliates", "payouts"]


def test_lists_print_in_the_one_format_vocabulary(tmp_path):
    db = tmp_path / "x.duckdb"
    settle("init", "--db", db)
    uploads = settle("uploads", "list", "--format", "csv", "--db", db)
    assert (uploads.exit_code, uploads.stdout) == (0, "id,file_name,sha256,bytes,status,rows_read,rows_stored,"
                                                      "rows_duplicate,rows_rejected,uploaded_by,uploaded_at,"
                                                      "retracted_at,platform_ids\n")
    assert settle("tokens", "create", "--role", "regulator", "--db", db).exit_code == 0
    listed = settle("tokens", "list", "--format", "csv", "--db", db).stdout.splitlines()
    assert listed[0].startswith("token_id,role,scope_id,") and len(listed) == 2
    assert listed[1].split(",")[1:3] == ["regulator", ""]
