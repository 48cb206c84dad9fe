"""Issue 13 item 3: approving a run with unreviewed integrity flags needs an explicit acknowledgement
(`settle approve --acknowledge-flags`); once every flag is cleared or confirmed, it does not."""

from __future__ import annotations

import pytest

from settlement.core.errors import UserError
from settlement.integrity.flags import review_flag, unreviewed_flags, year_flags
from settlement.lifecycle.review import approve_run
from tests.integrity.support import buys, exchange, settle_with


def _flagged(tmp_path):
    con = exchange(tmp_path)
    run = settle_with(con, buys("D1", "OWN1", ("B1", "B2", "B3")) + buys("D1", "OWN1", ["B4"], amount="10.00"))
    assert unreviewed_flags(con, 2024, run_id=run.run_id) == 1  # THIN_THRESHOLD
    return con, run


def test_approval_with_unreviewed_flags_asks_for_acknowledgement(tmp_path):
    con, run = _flagged(tmp_path)
    with pytest.raises(UserError, match="1 unreviewed integrity flag.*--acknowledge-flags"):
        approve_run(con, run.run_id, by="reviewer")
    approve_run(con, run.run_id, by="reviewer", acknowledge_flags=True)
    assert con.execute("SELECT state FROM run_states WHERE run_id = ?", [run.run_id]).fetchall() == [("approved",)]


def test_approval_after_every_flag_is_reviewed_needs_no_acknowledgement(tmp_path):
    con, run = _flagged(tmp_path)
    for flag in year_flags(con, 2024):
        review_flag(con, flag.flag_id, by="auditor", outcome="cleared", comment="B4 is a real customer")
    approve_run(con, run.run_id, by="reviewer")
    assert con.execute("SELECT state FROM run_states WHERE run_id = ?", [run.run_id]).fetchall() == [("approved",)]
