"""The flags as stored and shown (issue 13): regulator table with COMMENTs, flags per run (the unchanged-
input shortcut reuses its source run's), flags never change an amount, append-only reviews that carry over
to the same flag in later runs, `settle flags` and `settle flags review`, the dated thresholds file."""

from __future__ import annotations

import csv
import io
import json
from datetime import date

import pytest
from typer.testing import CliRunner

import settlement.run
from ledgers import ledger
from settlement.cli import app
from settlement.core.errors import UserError
from settlement.integrity.flags import CODES, review_flag, unreviewed_flags, year_flags
from settlement.integrity.thresholds import ThresholdFileError, load_thresholds, parse_thresholds
from tests.integrity.support import buys, codes, exchange
from tests.support.scenario import settle
from tests.support.world import sale, upload

runner = CliRunner()


def _farmed(tmp_path):
    """Two owners buying each other's datasets, plus a token fourth caller: RECIPROCAL_CALLERS, ROUND_TRIP,
    THIN_THRESHOLD, LATE_CALLERS."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    con = exchange(tmp_path, owners=("OWN1", "OWN2"))
    upload(con, buys("D1", "OWN1", ("B1", "B2", "OWN2")) + buys("D2", "OWN2", ("C1", "C2", "C3", "OWN1"))
           + buys("D1", "OWN1", ["LATE"], amount="10.00", at="2024-12-30T10:00:00"))
    return con


def test_every_integrity_table_and_column_has_a_comment(tmp_path):
    con = exchange(tmp_path)
    for table in ("integrity_flags", "integrity_reviews"):
        assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()[0][0]
        missing = con.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND "
                              "(comment IS NULL OR comment = '')", [table]).fetchall()
        assert missing == [], (table, missing)


def test_flags_never_change_an_amount(tmp_path, monkeypatch):
    with_flags = _farmed(tmp_path / "a")
    settle(with_flags, 2024)
    assert {"RECIPROCAL_CALLERS", "ROUND_TRIP", "THIN_THRESHOLD", "LATE_CALLERS"} <= codes(with_flags)
    monkeypatch.setattr(settlement.run, "compute_flags", lambda *a, **k: 0)
    without = _farmed(tmp_path / "b")
    settle(without, 2024)
    assert without.execute("SELECT count(*) FROM integrity_flags").fetchall()[0][0] == 0
    for sql in ("SELECT clause, beneficiary_id, dataset_id, amount, kind FROM ledger_entries ORDER BY entry_id",
                "SELECT * EXCLUDE (run_id) FROM run_dataset_results ORDER BY ALL",
                "SELECT * EXCLUDE (run_id) FROM exclusions ORDER BY ALL"):
        assert with_flags.execute(sql).fetchall() == without.execute(sql).fetchall()
    assert ledger.payouts(with_flags, 2024).rows() == ledger.payouts(without, 2024).rows()


def test_flags_belong_to_the_run_and_the_unchanged_shortcut_reuses_them(tmp_path):
    con = _farmed(tmp_path)
    first = settle(con, 2024)
    again = settle(con, 2024)  # same inputs: nothing recomputed, the first run's flags describe it
    assert again.run_id != first.run_id
    assert {f.run_id for f in year_flags(con, 2024)} == {first.run_id}
    assert con.execute("SELECT count(DISTINCT run_id) FROM integrity_flags").fetchall()[0][0] == 1


def test_reviews_are_append_only_and_cover_the_same_flag_in_later_runs(tmp_path):
    con = _farmed(tmp_path)
    settle(con, 2024)
    flags = year_flags(con, 2024)
    assert unreviewed_flags(con, 2024) == len(flags) >= 4
    recip = next(f for f in flags if f.code == "RECIPROCAL_CALLERS")
    review_flag(con, recip.flag_id, by="auditor A", outcome="cleared", comment="both are genuine AI labs")
    assert unreviewed_flags(con, 2024) == len(flags) - 1
    upload(con, [sale("x1", "B9", "50.00", "2024-07-01T10:00:00", dataset="D2", seller="OWN2")])
    settle(con, 2024)  # new inputs: flags recomputed under a new run, the review still applies by key
    again = {f.code: f for f in year_flags(con, 2024)}
    assert again["RECIPROCAL_CALLERS"].flag_id != recip.flag_id
    assert again["RECIPROCAL_CALLERS"].review == "cleared"
    review_flag(con, again["RECIPROCAL_CALLERS"].flag_id, by="auditor B", outcome="confirmed", comment="on 2nd look")
    latest = {f.code: f for f in year_flags(con, 2024)}["RECIPROCAL_CALLERS"]
    assert (latest.review, latest.reviewed_by) == ("confirmed", "auditor B")
    assert [r[0] for r in con.execute("SELECT outcome FROM integrity_reviews ORDER BY review_id").fetchall()] == [
        "cleared", "confirmed"]


def test_review_refusals_are_user_errors(tmp_path):
    con = _farmed(tmp_path)
    settle(con, 2024)
    flag = year_flags(con, 2024)[0]
    with pytest.raises(UserError, match="no flag 999"):
        review_flag(con, 999, by="a", outcome="cleared", comment="x")
    with pytest.raises(UserError, match="cleared or confirmed"):
        review_flag(con, flag.flag_id, by="a", outcome="ignored", comment="x")
    with pytest.raises(UserError, match="--comment"):
        review_flag(con, flag.flag_id, by="a", outcome="cleared", comment=" ")
    with pytest.raises(UserError, match="no settlement run of 2025"):
        year_flags(con, 2025)
    assert unreviewed_flags(con, 2025) == 0


def _cli(*args):
    return runner.invoke(app, [str(a) for a in args], prog_name="settle")


def test_settle_flags_prints_table_csv_json_and_records_reviews(tmp_path):
    con = _farmed(tmp_path)
    settle(con, 2024)
    con.close()
    db = tmp_path / "t.duckdb"
    out = _cli("flags", "--year", 2024, "--format", "csv", "--db", db)
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {"year", "code", "dataset_id", "platform_id", "parties", "detail"} <= set(rows[0])
    recip = next(r for r in rows if r["code"] == "RECIPROCAL_CALLERS")
    assert recip["parties"] == "OWN1;OWN2" and recip["dataset_id"] == "" and recip["year"] == "2024"
    as_json = json.loads(_cli("flags", "--year", 2024, "--format", "json", "--db", db).output)
    assert {r["code"] for r in as_json} == {r["code"] for r in rows}
    assert "integrity flag(s)" in _cli("flags", "--year", 2024, "--db", db).output
    done = _cli("flags", "review", recip["flag_id"], "--by", "auditor", "--outcome", "confirmed",
                "--comment", "owners trade subsidies", "--db", db)
    assert done.exit_code == 0 and f"flag {recip['flag_id']} confirmed by auditor" in done.output
    rows = list(csv.DictReader(io.StringIO(_cli("flags", "--year", 2024, "--format", "csv", "--db", db).output)))
    assert next(r for r in rows if r["code"] == "RECIPROCAL_CALLERS")["review"] == "confirmed"


def test_settle_flags_errors_and_help_panel(tmp_path):
    con = exchange(tmp_path)
    con.close()
    db = tmp_path / "t.duckdb"
    assert _cli("flags", "--year", 2024, "--db", db).exit_code == 1  # no run of 2024
    assert _cli("flags", "--db", db).exit_code == 64  # --year missing
    assert _cli("flags", "review", "7", "--by", "a", "--outcome", "maybe", "--comment", "c", "--db", db).exit_code == 64
    assert _cli("flags", "review", "7", "--by", "a", "--outcome", "cleared", "--comment", "c", "--db", db).exit_code == 1
    help_text = _cli("-h").output
    audit = help_text[help_text.index("Audit"):]
    assert "flags" in audit[:audit.index("Server")]


def test_thresholds_are_dated_noted_settings_for_every_code():
    th = load_thresholds()
    settings = th.on(date(2024, 12, 31))
    assert {k.split(".")[0] for k in settings} >= set(CODES) - {"REFUND_AFTER_APPROVAL"}
    assert len(th.sha256) == 64
    with pytest.raises(ThresholdFileError, match="missing note"):
        parse_thresholds('[[threshold]]\ncode = "X"\nname = "y"\nvalue = 1\nvalid_from = 2023-01-01\n')
    with pytest.raises(ThresholdFileError, match="not 0.5"):
        parse_thresholds('[[threshold]]\ncode = "X"\nname = "y"\nvalue = 0.5\nvalid_from = 2023-01-01\nnote = "n"\n')
    with pytest.raises(LookupError):
        th.value("PRICE_OUTLIER", "multiple", date(2022, 12, 31))


def test_docs_name_every_code_setting_table_and_command():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "integrity.md").read_text(encoding="utf-8")
    settings = load_thresholds().on(date(2024, 12, 31))
    for word in [*CODES, "integrity_flags", "integrity_reviews", "settle flags review", "--acknowledge-flags",
                 *(k.split(".")[1] for k in settings)]:
        assert word in text, word
