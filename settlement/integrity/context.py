"""What every integrity code reads: the year, the run, its dates and the thresholds in force.

``FlagContext`` is built once per ``compute_flags`` call and carries the per-call names of its TEMP tables
(``table(role)``); ``group_of`` is the year-graph group of a party
exactly as the clauses name it (``affiliate_groups.group_id``, or ``own:<id>`` for a party without records,
P7/P8, as in ``run_caller_buyers.group_id``). Imports ``settlement.core`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

# Columns every code's SELECT yields (INSERT ... BY NAME into the TEMP table named ``ctx.table("flags")``).
FLAG_COLUMNS = """
    code VARCHAR, dataset_id VARCHAR, platform_id VARCHAR, parties VARCHAR[], evidence VARCHAR[],
    ev_pairs STRUCT(d VARCHAR, b VARCHAR)[], figures VARCHAR, detail VARCHAR
"""


@dataclass(frozen=True)
class FlagContext:
    year: int
    run_id: int
    first_day: date  # 1 Jan of the year
    last_day: date  # last in-scope day of the year (P2/P3), 31 Dec when the year has none
    settings: dict  # "CODE.name" -> value in force on 31 Dec of the year
    thresholds_sha256: str
    caller_threshold: int = 3  # the run's clause6.caller_threshold (P10.4), from run_dataset_results
    # role -> this call's TEMP table / view name (core.sql.temp_tables): two calls on one connection never collide
    tables: dict[str, str] = field(default_factory=dict)

    def table(self, role: str) -> str:
        """The TEMP table or view of ``role`` staged by this ``compute_flags`` call."""
        try:
            return self.tables[role]
        except KeyError:
            raise LookupError(f"no TEMP table {role!r} staged for these flags (compute_flags names them)") from None

    def th(self, code: str, name: str):
        try:
            return self.settings[f"{code}.{name}"]
        except KeyError:
            raise LookupError(f"integrity threshold {code}.{name} is not in force on 31 Dec {self.year} "
                              "(settlement/integrity/thresholds.toml)") from None

    @property
    def evidence_limit(self) -> int:
        return int(self.settings["ALL.evidence_limit"])

    def year_sales(self, alias: str = "t") -> str:
        """WHERE fragment: live sales (P9: a retracted upload counts for nothing) dated in the year."""
        return (f"{alias}.kind = 'sale' AND NOT {alias}.retracted AND {alias}.local_date BETWEEN "
                f"DATE '{self.first_day.isoformat()}' AND DATE '{date(self.year, 12, 31).isoformat()}'")


def group_of(party_col: str, alias: str, ctx: FlagContext) -> tuple[str, str]:
    """(LEFT JOIN clause, group expression) of ``party_col`` in the year graph (P8)."""
    join = f"LEFT JOIN affiliate_groups {alias} ON {alias}.year = {ctx.year} AND {alias}.party_id = {party_col}"
    return join, f"coalesce(CAST({alias}.group_id AS VARCHAR), 'own:' || {party_col})"


def dec(value) -> str:
    """SQL literal of a threshold decimal (our own file, never user text)."""
    return f"CAST('{Decimal(value)}' AS DECIMAL(38,6))"
