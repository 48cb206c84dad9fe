"""The append-only, hash-chained ledger (P13): ledgers.ledger and `settle ledger|payouts`."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ledgers import ledger
from ledgers.ledger import GENESIS_HASH, InvalidTargets, append_run, payouts, payouts_csv, verify
from settlement.core import store
from settlement.cli import app

OWNER_A = "91330100MA27XXXXX1"
OWNER_B = "91330100MA27YYYYY2"
PLATFORM = "91330100MA27ZZZZZ3"
START = dt.datetime(2025, 1, 15, 8, 0, tzinfo=dt.timezone.utc)


def targets(*rows: tuple[int, str, str | None, str]) -> pl.DataFrame:
    """(clause, beneficiary_id, dataset_id, amount) rows as the frame the settlement stage hands in."""
    return pl.DataFrame(
        [(c, b, d, D(a)) for c, b, d, a in rows],
        schema={"clause": pl.Int32, "beneficiary_id": pl.String, "dataset_id": pl.String,
                "amount": pl.Decimal(18, 2)},
        orient="row",
    )


def run(con, year: int, *rows, fingerprint: str = "fp") -> ledger.RunResult:
    return append_run(con, year=year, targets=targets(*rows), params_hash="params-sha", inputs_fingerprint=fingerprint,
                      engine_version="test", started_at=START)


def summary(result: ledger.RunResult) -> list[tuple]:
    return [(e.entry_id, e.clause, e.beneficiary_id, e.dataset_id, e.amount, e.kind) for e in result.appended]


def balances(con, year: int) -> dict[tuple, D]:
    rows = con.execute("SELECT clause, beneficiary_id, dataset_id, sum(amount) FROM ledger_entries WHERE year = ? "
                       "GROUP BY ALL", [year]).fetchall()
    return {(c, b, d): a for c, b, d, a in rows}


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    store.init(path)
    return path


@pytest.fixture()
def con(db: Path):
    c = store.open_store(db)
    yield c
    c.close()


def test_first_run_accrues_every_non_zero_target(con) -> None:
    r = run(con, 2024, (6, OWNER_A, "ds-1", "1234.57"), (6, OWNER_A, "ds-2", "0.00"), (7, PLATFORM, None, "88.10"))
    assert r.run_id == 1 and r.year == 2024 and r.targets_count == 3
    # zero target → no entry; clause 7 key stored with dataset_id '' (not NULL); sorted clause, beneficiary, dataset
    assert summary(r) == [(1, 6, OWNER_A, "ds-1", D("1234.57"), "accrual"), (2, 7, PLATFORM, "", D("88.10"), "accrual")]
    assert r.appended[0].prev_hash == GENESIS_HASH
    assert r.appended[1].prev_hash == r.appended[0].hash
    runs = con.execute("SELECT run_id, year, params_hash, inputs_fingerprint, engine_version, entries_appended, "
                       "head_entry_id, head_hash, started_at FROM settlement_runs").fetchall()
    assert runs == [(1, 2024, "params-sha", "fp", "test", 2, 2, r.appended[1].hash, START)]
    assert con.execute("SELECT count(*) FROM ledger_entries WHERE dataset_id IS NULL").fetchall() == [(0,)]


def test_hash_is_sha256_of_the_documented_canonical_text(con) -> None:
    # An outside verifier's re-implementation of docs/architecture.md "Ledger": fields joined by '|',
    # text fields as <utf-8 byte length>:<text>, created_at in epoch microseconds, then '|' + prev_hash.
    r = run(con, 2024, (6, OWNER_A, "数据集-1", "10.50"), fingerprint="inputs-1")
    e = r.appended[0]
    us = int((e.created_at - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) / dt.timedelta(microseconds=1))

    def t(s: str) -> str:
        return f"{len(s.encode())}:{s}"

    canonical = "|".join(["ledger-v1", "1", "1", "2024", "6", t(OWNER_A), t("数据集-1"), "10.50", "accrual", str(us),
                          t("inputs-1")])
    assert e.hash == hashlib.sha256(f"{canonical}|{GENESIS_HASH}".encode()).hexdigest()
    assert con.execute("SELECT hash, inputs_fingerprint FROM ledger_entries").fetchall() == [(e.hash, "inputs-1")]


def test_adjustment_claw_back_and_reappearance(con) -> None:
    run(con, 2024, (6, OWNER_A, "ds-1", "100.00"), (6, OWNER_B, "ds-9", "40.00"))
    # target 100.00 → 112.35: delta +12.35, an adjustment; OWNER_B unchanged → nothing for it
    r2 = run(con, 2024, (6, OWNER_A, "ds-1", "112.35"), (6, OWNER_B, "ds-9", "40.00"))
    assert summary(r2) == [(3, 6, OWNER_A, "ds-1", D("12.35"), "adjustment")]
    # ds-1 disappears (e.g. its upload retracted): target 0 → claw-back −112.35 (= −100.00 − 12.35)
    r3 = run(con, 2024, (6, OWNER_B, "ds-9", "40.00"))
    assert summary(r3) == [(4, 6, OWNER_A, "ds-1", D("-112.35"), "adjustment")]
    assert balances(con, 2024) == {(6, OWNER_A, "ds-1"): D("0.00"), (6, OWNER_B, "ds-9"): D("40.00")}
    # back again: not the key's first entry, so an adjustment, not an accrual
    r4 = run(con, 2024, (6, OWNER_A, "ds-1", "5.00"), (6, OWNER_B, "ds-9", "40.00"))
    assert summary(r4) == [(5, 6, OWNER_A, "ds-1", D("5.00"), "adjustment")]
    # everything gone: both keys clawed back to 0
    r5 = run(con, 2024)
    assert summary(r5) == [(6, 6, OWNER_A, "ds-1", D("-5.00"), "adjustment"), (7, 6, OWNER_B, "ds-9", D("-40.00"), "adjustment")]
    assert payouts(con).height == 0
    assert verify(con).ok


def test_unchanged_inputs_append_nothing_but_record_the_run(con) -> None:
    rows = [(6, OWNER_A, "ds-1", "100.00"), (7, PLATFORM, "", "3.00")]
    run(con, 2024, *rows)
    before = con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall()
    again = run(con, 2024, *reversed(rows), fingerprint="fp-2")
    assert again.appended == () and again.run_id == 2
    assert con.execute("SELECT * FROM ledger_entries ORDER BY entry_id").fetchall() == before
    assert con.execute("SELECT run_id, entries_appended, head_entry_id FROM settlement_runs ORDER BY run_id").fetchall() \
        == [(1, 2, 2), (2, 0, 2)]
    assert verify(con).ok


def test_a_run_touches_only_its_own_year(con) -> None:
    run(con, 2023, (6, OWNER_A, "ds-1", "70.00"))
    r = run(con, 2024, (6, OWNER_A, "ds-1", "30.00"))  # 2023's key is not absent-from-2024 → no claw-back
    assert summary(r) == [(2, 6, OWNER_A, "ds-1", D("30.00"), "accrual")]
    assert balances(con, 2023) == {(6, OWNER_A, "ds-1"): D("70.00")}
    assert verify(con).ok


def test_invalid_targets_are_refused_and_nothing_is_recorded(con) -> None:
    cases = [
        (targets((6, OWNER_A, "ds-1", "1.00"), (6, OWNER_A, "ds-1", "2.00")), "duplicate key 6/"),
        (targets((7, PLATFORM, "ds-1", "1.00")), "clause 7 key with dataset_id ds-1"),
        (targets((6, OWNER_A, "", "1.00")), "clause 6 key without dataset_id"),
        (targets((5, OWNER_A, "x", "1.00")), "bad clause 5"),
        (targets((6, OWNER_A, "x", "-1.00")), "negative"),
        (pl.DataFrame({"clause": [6], "beneficiary_id": [OWNER_A], "dataset_id": ["x"], "amount": [1.5]}), "Decimal"),
        (pl.DataFrame({"clause": [6], "beneficiary_id": [OWNER_A], "dataset_id": ["x"]}), "lack columns"),
        (targets((6, OWNER_A, "x", "1.00")).with_columns(pl.col("amount").cast(pl.Decimal(18, 3))), "at most 2 places"),
    ]
    for frame, message in cases:
        with pytest.raises(InvalidTargets, match=message):
            append_run(con, year=2024, targets=frame, params_hash="p", inputs_fingerprint="f", engine_version="t",
                       started_at=START)
    assert con.execute("SELECT (SELECT count(*) FROM settlement_runs) + (SELECT count(*) FROM run_targets)").fetchall() == [(0,)]
    with pytest.raises(ValueError, match="timezone-aware"):
        append_run(con, year=2024, targets=targets(), params_hash="p", inputs_fingerprint="f", engine_version="t",
                   started_at=dt.datetime(2025, 1, 1))


def _three_runs(con) -> None:
    run(con, 2024, (6, OWNER_A, "ds-1", "100.00"), (6, OWNER_B, "ds-2", "50.00"), (7, PLATFORM, "", "9.99"))  # 1,2,3
    run(con, 2024, (6, OWNER_A, "ds-1", "120.00"), (7, PLATFORM, "", "9.99"))  # 4: +20.00, 5: −50.00
    run(con, 2025, (6, OWNER_A, "ds-1", "1.00"))  # 6


def test_verify_ok_on_an_honest_ledger(con) -> None:
    _three_runs(con)
    assert verify(con) == ledger.VerifyResult(True, 6, None, "ok: 6 entries in 3 runs verified", 3)


def test_update_in_place_is_detected_naming_the_entry(con, db: Path) -> None:
    _three_runs(con)
    con.execute("UPDATE ledger_entries SET amount = 1000000.00 WHERE entry_id = 4")
    result = verify(con)
    assert (result.ok, result.first_bad_entry_id, result.entries_checked) == (False, 4, 6)
    assert result.message == "entry 4: stored hash does not match its contents (altered in place?)"
    con.close()
    cli = CliRunner().invoke(app, ["ledger", "verify", "--db", str(db)])
    assert cli.exit_code == 1
    assert "entry 4: stored hash does not match" in cli.stderr


def test_cli_verify_ok_exit_zero(con, db: Path) -> None:
    _three_runs(con)
    con.close()
    cli = CliRunner().invoke(app, ["ledger", "verify", "--db", str(db)])
    assert cli.exit_code == 0, cli.output
    assert cli.stdout.splitlines()[0] == "ok: 6 entries in 3 runs verified"
    assert cli.stdout.splitlines()[1].startswith("head 6:3:0:")


# Tampering with the entries of _three_runs (entries 1..6), the first entry verify names, its exact message.
TAMPERING = [
    # A forger who also recomputes entry 2's own hash still breaks entry 3's prev_hash link.
    pytest.param(("UPDATE ledger_entries SET amount = 60.00 WHERE entry_id = 2",
                  f"UPDATE ledger_entries e SET hash = sha256({ledger.canonical_sql('e')} || '|' || e.prev_hash) "
                  "WHERE entry_id = 2"),
                 3, "entry 3: prev_hash does not link to the hash of the entry before",
                 id="update-with-a-recomputed-hash-breaks-the-next-link"),
    pytest.param(("DELETE FROM ledger_entries WHERE entry_id = 2",),
                 2, "entry 2 is missing: entry 3 follows entry 1", id="deleted-entry"),
    pytest.param(("DELETE FROM ledger_entries WHERE entry_id = 6",),
                 6, "ledger head names entry 6 but the last entry is 5 (entries deleted or added?)",
                 id="deleted-last-entry"),
]


@pytest.mark.parametrize(("statements", "first_bad", "message"), TAMPERING)
def test_tampering_is_detected_naming_the_first_bad_entry(con, statements, first_bad: int, message: str) -> None:
    _three_runs(con)
    for sql in statements:
        con.execute(sql)
    result = verify(con)
    assert (result.ok, result.first_bad_entry_id) == (False, first_bad)
    assert result.message == message


def test_rewritten_targets_fail_re_derivation(con) -> None:
    _three_runs(con)
    con.execute("UPDATE run_targets SET amount = 130.00 WHERE run_id = 2 AND dataset_id = 'ds-1'")
    result = verify(con)
    assert not result.ok and result.first_bad_entry_id == 4  # the last entry of that key up to run 2
    assert result.message == (f"after run 2 key 2024/6/{OWNER_A}/ds-1 sums to 120.00 but the run's target is 130.00")


def test_wrong_kind_is_detected(con) -> None:
    _three_runs(con)
    con.execute("UPDATE ledger_entries SET kind = 'accrual' WHERE entry_id = 4")
    result = verify(con)
    assert (result.ok, result.first_bad_entry_id) == (False, 4)


def _append_concurrently(con, frame, workers: int) -> tuple[list, list]:
    """Start `workers` append_run calls of the same targets at once, each on its own cursor."""
    results: list = []
    errors: list = []
    barrier = threading.Barrier(workers)

    def worker() -> None:
        cur = con.cursor()
        try:
            barrier.wait()
            results.append(append_run(cur, year=2024, targets=frame, params_hash="p", inputs_fingerprint="f",
                                      engine_version="t", started_at=START))
        except Exception as exc:  # pragma: no cover - reported by the caller's assertion
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_two_concurrent_runs_of_one_year_append_once(con) -> None:
    rows = [(6, OWNER_A, f"ds-{i}", f"{i}.00") for i in range(1, 41)] + [(7, PLATFORM, "", "5.00")]
    frame = targets(*rows)
    results, errors = _append_concurrently(con, frame, 2)
    assert errors == []
    assert sorted(len(r.appended) for r in results) == [0, 41]  # one appended all 41 keys, the other nothing
    assert con.execute("SELECT count(*), sum(amount) FROM ledger_entries").fetchall() == [(41, D("825.00"))]  # Σ1..40 + 5
    assert verify(con).ok


def test_concurrent_transactions_conflict_on_the_ledger_head(db: Path) -> None:
    # Without the process lock (another connection), the single ledger_head row makes DuckDB refuse the
    # second writer: two runs can never both commit from the same head.
    con = store.open_store(db)
    a, b = con.cursor(), con.cursor()
    frame = targets((6, OWNER_A, "ds-1", "1.00"))
    args = dict(year=2024, params_hash="p", inputs_fingerprint="f", engine_version="t", started_at=START)
    a.execute("BEGIN TRANSACTION")
    b.execute("BEGIN TRANSACTION")
    append_run(a, targets=frame, within_transaction=True, **args)
    with pytest.raises(ledger.LedgerConflict, match="conflicted"):
        append_run(b, targets=frame, within_transaction=True, **args)
    b.execute("ROLLBACK")
    a.execute("COMMIT")
    assert con.execute("SELECT count(*) FROM ledger_entries").fetchall() == [(1,)]
    assert verify(con).ok
    con.close()


def test_within_caller_transaction_rolls_back_with_the_caller(con) -> None:
    con.execute("BEGIN TRANSACTION")
    r = append_run(con, year=2024, targets=targets((6, OWNER_A, "ds-1", "1.00")), params_hash="p",
                   inputs_fingerprint="f", engine_version="t", started_at=START, within_transaction=True)
    assert r.run_id == 1 and len(r.appended) == 1
    con.execute("ROLLBACK")
    assert con.execute("SELECT (SELECT count(*) FROM ledger_entries) + (SELECT count(*) FROM settlement_runs) "
                       "+ (SELECT last_run_id FROM ledger_head)").fetchall() == [(0,)]
    assert run(con, 2024, (6, OWNER_A, "ds-1", "1.00")).run_id == 1


def _payout_fixture(con) -> None:
    run(con, 2024, (7, PLATFORM, "", "1000000.00"), (6, OWNER_B, "ds-b", "0.10"), (6, OWNER_A, "ds-z", "12.30"),
        (6, OWNER_A, "ds-a", "333333.34"))
    run(con, 2024, (7, PLATFORM, "", "1000000.00"), (6, OWNER_B, "ds-b", "0.10"), (6, OWNER_A, "ds-a", "333333.34"))
    run(con, 2023, (6, OWNER_B, "ds-b", "7.00"))


def test_payouts_csv_exact_text(con) -> None:
    _payout_fixture(con)
    # ds-z clawed back to 0 → no row; sorted year, clause, beneficiary_id, dataset_id; clause 7 dataset empty
    assert payouts_csv(payouts(con)) == (
        "year,clause,beneficiary_id,dataset_id,amount\n"
        f"2023,6,{OWNER_B},ds-b,7.00\n"
        f"2024,6,{OWNER_A},ds-a,333333.34\n"
        f"2024,6,{OWNER_B},ds-b,0.10\n"
        f"2024,7,{PLATFORM},,1000000.00\n"
    )
    assert payouts_csv(payouts(con, 2023)) == f"year,clause,beneficiary_id,dataset_id,amount\n2023,6,{OWNER_B},ds-b,7.00\n"
    assert payouts_csv(payouts(con, 2030)) == "year,clause,beneficiary_id,dataset_id,amount\n"


def test_settle_payouts_cli_formats(con, db: Path) -> None:
    _payout_fixture(con)
    con.close()
    runner = CliRunner()
    csv = runner.invoke(app, ["payouts", "--format", "csv", "--year", "2024", "--db", str(db)])
    assert csv.exit_code == 0
    assert csv.stdout == (
        "year,clause,beneficiary_id,dataset_id,amount\n"
        f"2024,6,{OWNER_A},ds-a,333333.34\n"
        f"2024,6,{OWNER_B},ds-b,0.10\n"
        f"2024,7,{PLATFORM},,1000000.00\n"
    )
    js = runner.invoke(app, ["payouts", "--format", "json", "--db", str(db)])
    import json

    assert json.loads(js.stdout)[-1] == {"year": 2024, "clause": 7, "beneficiary_id": PLATFORM, "dataset_id": "",
                                         "amount": "1000000.00"}
    table = runner.invoke(app, ["payouts", "--db", str(db)])
    assert table.exit_code == 0
    # per-year totals: 2024 = 333,333.34 + 0.10 + 1,000,000.00 = 1,333,333.44; all = + 7.00
    assert "1,333,333.44" in table.stdout and "1,333,340.44" in table.stdout


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips_exact_decimals(con, db: Path, tmp_path: Path, fmt: str) -> None:
    _payout_fixture(con)
    out = tmp_path / f"ledger.{fmt}"
    assert ledger.export(con, fmt, out) == 6
    reader = "read_csv" if fmt == "csv" else "read_parquet"
    back = con.execute(
        f"SELECT entry_id, CAST(amount AS DECIMAL(18,2)), hash, prev_hash, created_at_us FROM {reader}(?"
        + (", types={'amount': 'DECIMAL(18,2)', 'beneficiary_id': 'VARCHAR'}" if fmt == "csv" else "")
        + ") ORDER BY entry_id", [str(out)]).fetchall()
    stored = con.execute("SELECT entry_id, amount, hash, prev_hash, epoch_us(created_at) FROM ledger_entries "
                         "ORDER BY entry_id").fetchall()
    assert back == stored
    # run 1 (sorted by clause, beneficiary, dataset), run 2 claws ds-z back, run 3 is 2023
    assert [r[1] for r in back] == [D("333333.34"), D("12.30"), D("0.10"), D("1000000.00"), D("-12.30"), D("7.00")]
    if fmt == "csv":
        text = out.read_text()
        assert text.splitlines()[0] == ("entry_id,run_id,year,clause,beneficiary_id,dataset_id,amount,kind,created_at,"
                                        "created_at_us,inputs_fingerprint,prev_hash,hash")
        assert ",-12.30,adjustment," in text and ",0.10,accrual," in text
        assert f",{PLATFORM},\"\",1000000.00," in text  # clause 7: empty (not NULL) dataset_id
    else:
        assert pl.read_parquet(out).schema["amount"] == pl.Decimal(18, 2)
        # every column but the timestamp text comes back exactly as stored
        cols = "entry_id, run_id, year, clause, beneficiary_id, dataset_id, amount, kind, inputs_fingerprint, prev_hash, hash"
        assert con.execute(f"SELECT {cols} FROM read_parquet(?) ORDER BY entry_id", [str(out)]).fetchall() == \
            con.execute(f"SELECT {cols} FROM ledger_entries ORDER BY entry_id").fetchall()


def test_export_cli_and_bad_format(con, db: Path, tmp_path: Path) -> None:
    _payout_fixture(con)
    with pytest.raises(ValueError, match="unknown export format"):
        ledger.export(con, "xlsx", tmp_path / "x")
    con.close()
    out = tmp_path / "l.csv"
    res = CliRunner().invoke(app, ["ledger", "export", "--format", "csv", "--out", str(out), "--db", str(db)])
    assert res.exit_code == 0 and res.stdout.strip() == f"exported 6 ledger entries to {out}"
    assert len(out.read_text().splitlines()) == 7


def test_conflicting_connections_retry_from_fresh_state(con, monkeypatch) -> None:
    # Take away the process lock: the ledger_head conflict alone must still make exactly one run append,
    # the other retrying after it and finding nothing left to do.
    import contextlib

    from ledgers import append as ledger_append

    monkeypatch.setattr(ledger_append, "_APPEND_LOCK", contextlib.nullcontext())
    frame = targets(*[(6, OWNER_A, f"ds-{i}", f"{i}.00") for i in range(1, 201)])
    results, errors = _append_concurrently(con, frame, 3)
    assert errors == []
    assert sorted(len(r.appended) for r in results) == [0, 0, 200]
    assert sorted(r.run_id for r in results) == [1, 2, 3]
    # Σ 1..200 = 200 x 201 / 2 = 20,100.00
    assert con.execute("SELECT count(*), sum(amount) FROM ledger_entries").fetchall() == [(200, D("20100.00"))]
    assert verify(con).ok


def test_caller_transactions_under_serialised_append_once(con) -> None:
    # The settlement stage's pattern: its own BEGIN, append_run(within_transaction=True), more rows, COMMIT.
    # Held under ledger.serialised(), concurrent threads wait for each other instead of conflicting.
    frame = targets(*[(6, OWNER_A, f"ds-{i}", "2.00") for i in range(1, 51)])
    results: list = []
    errors: list = []
    barrier = threading.Barrier(3)

    def worker() -> None:
        cur = con.cursor()
        try:
            barrier.wait()
            with ledger.serialised():
                cur.execute("BEGIN TRANSACTION")
                r = append_run(cur, year=2024, targets=frame, params_hash="p", inputs_fingerprint="f",
                               engine_version="t", started_at=START, within_transaction=True)
                cur.execute("COMMIT")
            results.append(r)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(len(r.appended) for r in results) == [0, 0, 50]
    # 50 keys x 2.00 = 100.00
    assert con.execute("SELECT count(*), sum(amount) FROM ledger_entries").fetchall() == [(50, D("100.00"))]


def test_deleted_run_is_detected(con) -> None:
    _three_runs(con)
    run(con, 2025, (6, OWNER_A, "ds-1", "1.00"))  # run 4 appends nothing: only its row records it
    con.execute("DELETE FROM settlement_runs WHERE run_id = 4")
    result = verify(con)
    assert (result.ok, result.first_bad_entry_id) == (False, None)
    assert result.message == "ledger head names run 4 but the last recorded run is 3"
    con.execute("DELETE FROM settlement_runs WHERE run_id = 2")
    assert verify(con).message == "entry 4: run 2 of year 2024 is not a recorded run"


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_alone_re_verifies_and_detects_tampering(con, tmp_path: Path, fmt: str) -> None:
    _payout_fixture(con)
    run(con, 2024, (6, OWNER_A, "数据集-中", "1.05"), (7, PLATFORM, "", "1000000.00"))  # non-ASCII id
    out = tmp_path / f"ledger.{fmt}"
    ledger.export(con, fmt, out)
    assert ledger.verify_export(out).ok
    # tamper: entry 3's amount 0.10 → 0.11 in the exported file
    df = pl.read_parquet(out) if fmt == "parquet" else pl.read_csv(out, schema_overrides={"amount": pl.String})
    assert df.filter(pl.col("entry_id") == 3)["kind"].to_list() == ["accrual"]
    new_amount = pl.lit(D("0.11"), dtype=pl.Decimal(18, 2)) if fmt == "parquet" else pl.lit("0.11")
    df = df.with_columns(pl.when(pl.col("entry_id") == 3).then(new_amount).otherwise(pl.col("amount")).alias("amount"))
    bad = tmp_path / f"bad.{fmt}"
    df.write_parquet(bad) if fmt == "parquet" else df.write_csv(bad)
    result = ledger.verify_export(bad)
    assert (result.ok, result.first_bad_entry_id) == (False, 3)
    assert result.message == "entry 3: stored hash does not match its contents (altered?)"
    # dropping a row is named too
    dropped = tmp_path / f"dropped.{fmt}"
    short = df.filter(pl.col("entry_id") != 2)
    short.write_parquet(dropped) if fmt == "parquet" else short.write_csv(dropped)
    assert ledger.verify_export(dropped).message == "entry 2 is missing from the export"
