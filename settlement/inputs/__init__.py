"""Pipeline stage 1, inputs: reading files (``tabular``), trade uploads (``ingest``: validate, classify,
store, retract) and the registries (``registry``: datasets, platforms, affiliations, prior awards).

Owns the tables ``uploads``, ``trade_rows`` (view ``trades``), ``rejected_rows``, ``registry_loads`` and the
``*_versions`` tables. May import ``settlement.core`` only; must not import affiliates, clauses, the run,
``ledgers``, the CLI or ``api``.
"""
