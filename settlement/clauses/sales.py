"""Sale status (P2, P3, P8, P9, P10.1, P10.2, P11.1, P11.2): every stored sale of the year in one table.

``stage_sales`` runs ``sales.sql`` on the backend into the run's ``status`` result: each sale dated in Y with its net
amount (P9), scope (P2), its owner on the sale date (dated ownership, P10.1), dataset and platform
certification on that date (P10.1, P11.1), the four trade-date relations (P8 day graph) and the first
P12 reason per clause. Imports ``settlement.core`` and the backend interface only.
"""

from __future__ import annotations

from settlement.backends.base import Backend
from settlement.clauses.portable import statement
from settlement.clauses.relations import run_relations
from settlement.clauses.year_params import YearParams


def stage_sales(backend: Backend, yp: YearParams, names: dict[str, str]) -> None:
    """names["status"]: one row per stored sale dated in Y (see module docstring and sales.sql)."""
    backend.run(names["status"], statement("sales", **run_relations(yp, names)), reused=True)
