"""The settlement lifecycle after a run (issue 11, CONTRACT "Settlement lifecycle"): review (four eyes),
public notice (公示) with objections, disbursement (拨付) with recoveries (追回), accounts and statements
(对账单).

Why here and not in ``ledgers``: the ledger owns what an amount *is* (entries, and which runs' entries
are void: a rejection changes the entitlement, so P13's deltas and ``verify`` must know it) and the
append-only, hash-chained record of every lifecycle step (``ledgers.events``). What the steps *mean* is
procedure of the subsidy programme, not ledger arithmetic: four eyes and review order, notice periods
in working days, which objection holds which line, what a batch pays, documents in zh-CN. That lives
here, on top of ``ledgers``, and may change with the programme without touching the chain.

Modules: ``review`` (runs list, approve, reject), ``notice`` (notice list, working days), ``objections``,
``disburse`` (batches, bank confirmation), ``accounts``, ``documents`` (csv / xlsx / PDF writing with an
embedded CJK font), ``statement``, ``walkthrough`` (one year through every state, for the demo).
Must not import ``api`` or ``settlement.cli``.
"""
