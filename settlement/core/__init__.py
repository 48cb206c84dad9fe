"""The engine's foundation: the store and its migrations, SQL plumbing, money, dated policy parameters,
party identifiers and the user-error type.

Owns: ``store`` (the DuckDB file, forward migrations in ``migrations/``), ``money`` (P1 rounding, P10.7 cap
split), ``params`` + ``policy_params.toml`` (rules as dated, cited data), ``identifiers`` (P4), ``errors``.
Must not import anything above it: no ``settlement.inputs``, ``affiliates``, ``clauses``, ``run``,
``explain``, ``cli``, ``tools``, ``access``, nor ``ledgers`` or ``api``.
"""
