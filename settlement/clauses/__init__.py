"""Pipeline stage 3, the clauses: from stored trades, registries, prior awards and affiliate groups to the
target payable per ledger key (clause 6, P10; clause 7, P11) and the P12 exclusion of every trade that
earns nothing.

May import ``settlement.core`` and ``settlement.affiliates``; must not import ``ledgers`` (the clauses do
not know the ledger), the run, the CLI or ``api``.
"""
