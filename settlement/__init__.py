"""Rules and computation of the data-exchange royalty settlement engine.

Owns: the store and its schema (``store``), ingestion of trade files (``ingest``), registry loading
(``registry``), affiliate resolution (``affiliates``), policy parameters and clauses 6/7.
Must not import ``api`` (the HTTP edge) or ``settlement.cli`` (the command-line edge); ``ledgers`` may be
imported only by the settlement-run stage.
"""

ENGINE_VERSION = "0.1.0"
