"""The base of the stateful (hypothesis) tests over one store: the machine owns its connection, closes it at
teardown, and keeps the invariant every such machine shares, that the whole ledger (hash-chained entries and
lifecycle records) verifies after every step. Holds no tests."""

from __future__ import annotations

import duckdb
from hypothesis.stateful import RuleBasedStateMachine, invariant

from ledgers import ledger


class StoreMachine(RuleBasedStateMachine):
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__()
        self.con = con

    @invariant()
    def chain_verifies(self) -> None:
        result = ledger.verify(self.con)
        assert result.ok, result.message

    def teardown(self) -> None:
        self.con.close()
