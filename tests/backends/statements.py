"""Every portable statement with its placeholders filled as a run of 2024 fills them (tests only)."""

from __future__ import annotations

from settlement.clauses import portable
from settlement.clauses.relations import STAGE_ROLES, exclusions_statement, run_relations
from settlement.clauses.year_params import year_params
from settlement.core.params import load_params

YEAR = 2024


def filled(name: str) -> str:
    rel = run_relations(year_params(load_params(), YEAR), {role: f"_parse_{role}" for role in STAGE_ROLES})
    if name == "exclusions":
        return exclusions_statement(rel)
    return portable.statement(name, year=YEAR, budget=200, **rel)
