"""Issue 15: the attacks of someone who can write the store file, each reproduced and seen detected or
refused: edited trades, a forged append, a patched tail, an edited approval (docs/threat-model.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledgers import ledger, signatures
from ledgers.chain import chain_hash
from ledgers.runchain import canonical_run_sql, check_anchor, current_anchor
from settlement.cli import app
from settlement.core.errors import UserError
from settlement.lifecycle import review
from settlement.lifecycle.disburse import disburse
from settlement.lifecycle.notice import publish_notice
from tests.support.scenario import settle, world
from tests.support.world import sale, upload

BUYERS = ("B1", "B2", "B3", "B4")
MONDAY = dt.date(2026, 11, 30)


@pytest.fixture()
def con(tmp_path: Path):
    c = world(tmp_path)
    upload(c, [sale(f"t{i}", b, "1000.00", f"2024-03-0{i + 1} 10:00:00") for i, b in enumerate(BUYERS)])
    settle(c, 2024)
    assert ledger.verify(c).ok
    yield c
    c.close()


@pytest.fixture()
def keys(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("reg:bob", "reg:eve"):
        signatures.generate(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
        out[name] = tmp_path / name
    return out


def _forge_entry(con, amount: str) -> None:
    """The issue's forged append: a run row, its target and an entry whose hash is recomputed from the
    documented canonical form; ledger_head patched to it."""
    run_id, entry_id, prev = con.execute("SELECT last_run_id + 1, last_entry_id + 1, last_hash FROM ledger_head").fetchall()[0]
    key = con.execute("SELECT clause, beneficiary_id, dataset_id, amount FROM run_targets WHERE run_id = ? "
                      "ORDER BY amount DESC LIMIT 1", [run_id - 1]).fetchall()[0]
    con.execute("INSERT INTO settlement_runs SELECT * REPLACE (? AS run_id, 1 AS entries_appended, "
                "? AS head_entry_id, 'x' AS head_hash, NULL AS run_hash) FROM settlement_runs WHERE run_id = ?",
                [run_id, entry_id, run_id - 1])
    con.execute("INSERT INTO run_targets SELECT ? AS run_id, year, clause, beneficiary_id, dataset_id, "
                "amount + CASE WHEN clause = ? AND beneficiary_id = ? AND dataset_id = ? THEN CAST(? AS DECIMAL(18,2)) "
                "ELSE 0 END FROM run_targets WHERE run_id = ?", [run_id, key[0], key[1], key[2], amount, run_id - 1])
    con.execute("INSERT INTO ledger_entries SELECT ?, ?, year, clause, beneficiary_id, dataset_id, CAST(? AS DECIMAL(18,2)), "
                "'adjustment', now(), inputs_fingerprint, ?, '' FROM ledger_entries WHERE run_id = ? AND clause = ? "
                "AND beneficiary_id = ? AND dataset_id = ? LIMIT 1",
                [entry_id, run_id, amount, prev, run_id - 1, key[0], key[1], key[2]])
    canonical = con.execute(f"SELECT {ledger.canonical_sql()} FROM ledger_entries WHERE entry_id = ?", [entry_id]).fetchall()[0][0]
    h = chain_hash(canonical, prev)
    con.execute("UPDATE ledger_entries SET hash = ? WHERE entry_id = ?", [h, entry_id])
    con.execute("UPDATE settlement_runs SET head_hash = ? WHERE run_id = ?", [h, run_id])
    con.execute("UPDATE ledger_head SET last_run_id = ?, last_entry_id = ?, last_hash = ?", [run_id, entry_id, h])


def _rehash_run(con, run_id: int) -> None:
    """The full-knowledge forger: recompute the run's digests and hash as the documented form says."""
    from ledgers.runchain import INPUTS_DIGEST_SQL, TARGETS_DIGEST_SQL

    con.execute(f"UPDATE settlement_runs SET inputs_digest = ({INPUTS_DIGEST_SQL}), targets_digest = ({TARGETS_DIGEST_SQL}),"
                " prev_run_hash = coalesce((SELECT run_hash FROM settlement_runs WHERE run_id = $run_id - 1), repeat('0', 64))"
                " WHERE run_id = $run_id",
                dict(run_id=run_id))
    con.execute(f"UPDATE settlement_runs SET run_hash = sha256({canonical_run_sql()} || '|' || prev_run_hash) "
                "WHERE run_id = ?", [run_id])


def test_edited_trade_amounts_are_named_by_upload_and_rows(con) -> None:
    con.execute("UPDATE trade_rows SET amount = amount * 100 WHERE trade_id = 't2'")
    result = ledger.verify(con)
    assert not result.ok
    assert "trade_rows of upload 1, rows" in result.message and "no longer match" in result.message


def test_edited_trades_with_recomputed_digests_break_the_runs_that_read_them(con) -> None:
    from settlement.inputs import digests

    con.execute("UPDATE trade_rows SET amount = amount * 100")
    con.execute("DELETE FROM input_digest_chunks WHERE source = 'upload'")
    con.execute("DELETE FROM input_digests WHERE source = 'upload'")
    digests.record(con, "upload", 1)
    result = ledger.verify(con)
    assert not result.ok and "run 1: the digest it read of upload 1 differs" in result.message


def test_deleted_and_added_trade_rows_are_noticed(con) -> None:
    con.execute("DELETE FROM trade_rows WHERE trade_id = 't3'")
    assert "trade_rows of upload 1" in ledger.verify(con).message


def test_forged_append_is_detected_by_the_run_chain(con) -> None:
    _forge_entry(con, "900000.00")
    result = ledger.verify(con)
    assert not result.ok and "run 2" in result.message


def test_forged_append_by_a_full_knowledge_writer_can_never_be_approved_or_paid(con, keys) -> None:
    review.register_key(con, "reg:bob", Path(f"{keys['reg:bob']}.pub"), by="admin")
    review.approve_run(con, 1, by="reg:bob", key=signatures.load_private_key(Path(f"{keys['reg:bob']}.key")))
    anchor = current_anchor(con)
    _forge_entry(con, "900000.00")
    _rehash_run(con, 2)
    assert ledger.verify(con).ok  # consistent: a writer who knows the forms can append (docs/threat-model.md)
    assert check_anchor(con, anchor) is None  # an append keeps the anchored prefix
    # ... but nobody can approve it without a registered private key
    with pytest.raises(UserError, match="sign the approval"):
        review.approve_run(con, 2, by="reg:eve")
    with pytest.raises(UserError, match="not the key registered"):
        review.approve_run(con, 2, by="reg:bob", key=signatures.load_private_key(Path(f"{keys['reg:eve']}.key")))
    # an approval record forged with a recomputed chain hash and no (or a made-up) signature does not count
    from ledgers import events
    started_by = con.execute("SELECT started_by FROM settlement_runs WHERE run_id = 2").fetchall()[0][0]
    events.record(con, lambda c: [dict(kind="approve", year=2024, run_id=2, actor="reg:bob", run_started_by=started_by,
                                       signature="00" * 64)])
    result = ledger.verify(con)
    assert not result.ok and "signature does not verify" in result.message
    with pytest.raises(UserError, match="refused"):
        disburse(con, 2024, by="treasury", on=MONDAY)
    with pytest.raises(UserError, match="refused"):
        publish_notice(con, 2024, by="office", on=MONDAY, working_days=0)


def test_patched_tail_is_detected(con) -> None:
    """The issue's patched tail: delete the last entry, patch ledger_head, the run row and run_targets."""
    _two_runs = con.execute("SELECT max(entry_id) FROM ledger_entries").fetchall()[0][0]
    last = con.execute("SELECT entry_id, run_id, prev_hash, clause, beneficiary_id, dataset_id FROM ledger_entries "
                       "ORDER BY entry_id DESC LIMIT 1").fetchall()[0]
    anchor = current_anchor(con)
    _patch_tail(con, last)
    result = ledger.verify(con)
    assert not result.ok and "run 1" in result.message  # the run row no longer matches its hash
    _rehash_run(con, 1)
    assert ledger.verify(con).ok  # a full-knowledge writer with no anchor kept outside wins ...
    result = ledger.verify(con, anchors=(anchor,))
    assert not result.ok and "anchor" in result.message  # ... unless someone kept the anchor
    assert _two_runs


def _patch_tail(con, last) -> None:
    entry_id, run_id, prev_hash, clause, beneficiary, dataset = last
    con.execute("DELETE FROM ledger_entries WHERE entry_id = ?", [entry_id])
    con.execute("DELETE FROM run_targets WHERE run_id = ? AND clause = ? AND beneficiary_id = ? AND dataset_id = ?",
                [run_id, clause, beneficiary, dataset])
    con.execute("UPDATE settlement_runs SET entries_appended = entries_appended - 1, targets_count = targets_count - 1, "
                "head_entry_id = ?, head_hash = ? WHERE run_id = ?", [entry_id - 1, prev_hash, run_id])
    con.execute("UPDATE ledger_head SET last_entry_id = ?, last_hash = ?", [entry_id - 1, prev_hash])


def test_patched_tail_of_an_approved_run_breaks_its_signature(con, keys) -> None:
    review.register_key(con, "reg:bob", Path(f"{keys['reg:bob']}.pub"), by="admin")
    review.approve_run(con, 1, by="reg:bob", key=signatures.load_private_key(Path(f"{keys['reg:bob']}.key")))
    assert ledger.verify(con).ok
    last = con.execute("SELECT entry_id, run_id, prev_hash, clause, beneficiary_id, dataset_id FROM ledger_entries "
                       "ORDER BY entry_id DESC LIMIT 1").fetchall()[0]
    _patch_tail(con, last)
    _rehash_run(con, 1)
    result = ledger.verify(con)
    assert not result.ok and "signature does not verify" in result.message


@pytest.mark.parametrize("edit", [
    "UPDATE lifecycle_events SET signature = NULL WHERE kind = 'approve'",
    "UPDATE lifecycle_events SET actor = 'reg:eve' WHERE kind = 'approve'",
    "UPDATE lifecycle_events SET signature = replace(signature, substr(signature, 1, 2), 'ff') WHERE kind = 'approve'",
])
def test_edited_approval_is_detected(con, keys, edit) -> None:
    review.register_key(con, "reg:bob", Path(f"{keys['reg:bob']}.pub"), by="admin")
    review.approve_run(con, 1, by="reg:bob", key=signatures.load_private_key(Path(f"{keys['reg:bob']}.key")))
    assert ledger.verify(con).ok
    con.execute(edit)
    assert not ledger.verify(con).ok
    with pytest.raises(UserError):
        disburse(con, 2024, by="treasury", on=MONDAY)


def test_unsigned_approve_works_until_a_key_is_registered(con, keys) -> None:
    review.approve_run(con, 1, by="reg:bob")  # no key registered yet: the pre-issue-15 behaviour
    assert ledger.verify(con).ok
    review.register_key(con, "reg:eve", Path(f"{keys['reg:eve']}.pub"), by="admin")
    assert ledger.verify(con).ok  # the earlier unsigned approval stays valid (legacy)


def test_cli_verify_prints_the_head_and_checks_anchors(con, tmp_path, keys) -> None:
    con.close()
    db = tmp_path / "t.duckdb"
    run = CliRunner().invoke(app, ["ledger", "verify", "--db", str(db)])
    assert run.exit_code == 0, run.output
    head = run.stdout.splitlines()[-1].split()[1]
    assert head.startswith("2:1:0:") or head.count(":") == 3
    assert CliRunner().invoke(app, ["ledger", "verify", "--db", str(db), "--anchor", head]).exit_code == 0
    bad = head[:-1] + ("0" if head[-1] != "0" else "1")
    run = CliRunner().invoke(app, ["ledger", "verify", "--db", str(db), "--anchor", bad])
    assert run.exit_code == 1 and "anchor" in run.output
    pub = f"{keys['reg:bob']}.pub"
    assert CliRunner().invoke(app, ["keys", "register", "reg:bob", "--public-key", pub, "--db", str(db)]).exit_code == 0
    run = CliRunner().invoke(app, ["approve", "1", "--by", "reg:bob", "--db", str(db)])
    assert run.exit_code == 1 and "--key" in run.output
    run = CliRunner().invoke(app, ["approve", "1", "--by", "reg:bob", "--key", f"{keys['reg:bob']}.key", "--db", str(db)])
    assert run.exit_code == 0 and "signed" in run.output


def test_anchor_of_a_plain_entry_hash(con) -> None:
    h = con.execute("SELECT hash FROM ledger_entries WHERE entry_id = 1").fetchall()[0][0]
    assert check_anchor(con, h) is None
    assert check_anchor(con, hashlib.sha256(b"x").hexdigest()) is not None


def test_digests_are_the_same_a_batch_at_a_time_and_find_an_edit_in_a_later_batch(tmp_path, monkeypatch) -> None:
    """Verify digests a batch of rows at a time (a 10M-row store ran out of memory in one query): with one
    chunk per batch, a 10,000-row upload (rows 2..10001: chunks 0, 1, 2) records the same digest, and an edit
    in the third chunk is named by its rows (8192..10001)."""
    from settlement.inputs import digests, ingest
    from tests.support.ingest import csv_file, new_store
    from tests.support.ingest import sale as csv_sale

    con = new_store(tmp_path)
    ingest.ingest_file(con, csv_file(tmp_path, "big.csv", *(csv_sale(f"t{i}") for i in range(10_000))),
                       uploaded_by="t")
    whole = digests.current(con)
    monkeypatch.setattr(digests, "BATCH_ROWS", digests.CHUNK_ROWS)
    con.execute("DELETE FROM input_digest_chunks; DELETE FROM input_digests")
    digests.record(con, "upload", 1)
    assert digests.current(con) == whole
    assert con.execute("SELECT chunk, first_row, last_row, rows FROM input_digest_chunks ORDER BY chunk").fetchall() == [
        (0, 2, 4095, 4094), (1, 4096, 8191, 4096), (2, 8192, 10001, 1810)]
    assert digests.first_mismatch(con) is None
    con.execute("UPDATE trade_rows SET amount = amount + 1 WHERE trade_id = 't9000'")
    assert digests.first_mismatch(con) == (
        "trade_rows of upload 1, rows 8192–10001: the stored rows no longer match the digest recorded when they "
        "were stored (1810 rows recorded, 1810 now: edited, added or deleted)")
    con.close()
