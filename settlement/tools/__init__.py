"""Tools around the pipeline: synthetic data (``generate``, ``credit_codes``) and the demo loader (``demo``).

Not part of the settlement rules. ``generate`` and ``credit_codes`` write files only (no store); ``demo``
calls the same stages as the CLI. Must not import the CLI or ``api``.
"""
