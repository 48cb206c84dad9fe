"""Pipeline stage 2, affiliate resolution (P4–P8): who is related to whom, on which day, and why.

``engine`` is the set-based array engine (polars/numpy/scipy, no store); ``groups`` builds the year and day
groups of a year into ``affiliate_groups`` / ``affiliate_day_groups`` and explains verdicts as paths of
records. May import ``settlement.core`` only; must not import inputs, clauses, the run, ``ledgers``, the CLI
or ``api``.
"""
