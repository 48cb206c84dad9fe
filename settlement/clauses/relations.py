"""The relations the run-keyed statements read (``${trades}``, ``${params}`` ...), for a run being computed
and for the regulator view ``exclusions`` (migration 0011), so that both use the same ``.sql`` files.

Every relation carries ``run_id``. A run being computed sees the live store (run_id 0: the current
``trades``, registries and the year's ``affiliate_day_groups``) and its own named results (STAGE_ROLES). The
view sees, for every stored run, the compact record the run left (``exclusion_runs``, ``exclusion_uploads``,
``exclusion_datasets``, ``exclusion_platforms``, ``exclusion_day_groups``, ``exclusion_paths``,
``run_dataset_results``) over the append-only ``trade_rows``: the exclusions of a run are derived on demand,
never written row by row (issue 14), and stay what the run saw whatever is loaded or retracted later.
"""

from __future__ import annotations

from settlement.clauses.portable import statement
from settlement.clauses.year_params import YearParams, lit

TRADE_COLUMNS = ("trade_id, platform_id, dataset_id, seller_id, buyer_id, local_date, amount, kind, ref_trade_id, "
                 "upload_id")
NO_PATH = ("'same affiliate group on the trade date; for the record path run: "
           "settle affiliates explain A B --on DATE'")


def window_text(yp: YearParams) -> str:
    return f"{yp.window_start}..{yp.window_end}" if yp.first_day else "none in this year"


def run_params_sql(yp: YearParams) -> str:
    """The one-row ``${params}`` of a run being computed (run_id 0)."""
    scope = yp.first_day is not None
    start = lit(yp.window_start) if scope else "CAST(NULL AS DATE)"
    end = lit(yp.window_end) if scope else "CAST(NULL AS DATE)"
    thr = yp.c6_threshold if yp.c6_threshold is not None else 0
    return (f"(SELECT CAST(0 AS BIGINT) AS run_id, {int(yp.year)} AS year, {'true' if scope else 'false'} AS in_scope, "
            f"{start} AS window_start, {end} AS window_end, '{window_text(yp)}' AS window_text, "
            f"{int(thr)} AS threshold)")


# The named results of a run being computed: TEMP tables of the store (DuckDB) or the backend's views (Spark),
# named per run (``_<tag>_<role>``, ``settlement.clauses.targets.staged_targets``) so two runs never collide.
STAGE_ROLES = ("status", "callers", "per", "volumes", "related", "refunds", "cert6", "cert7", "qualifies",
               "datasets0", "datasets1", "datasets")


def run_relations(yp: YearParams, names: dict[str, str]) -> dict[str, str]:
    """Relations of a run being computed, on a backend bound to the store's inputs; ``names``: the run's
    named results by role (STAGE_ROLES)."""
    zero = "CAST(0 AS BIGINT) AS run_id"
    return {
        "params": run_params_sql(yp),
        "trades": f"(SELECT {zero}, {TRADE_COLUMNS}, retracted FROM trades)",
        "datasets": f"(SELECT {zero}, dataset_id, owner_id, certified_on, certified_until, owner_from, owner_until "
                    "FROM datasets)",
        "platforms": f"(SELECT {zero}, platform_id, certified_on, certified_until FROM platforms)",
        "day_groups": f"(SELECT {zero}, party_id, day_from, day_to, group_id FROM affiliate_day_groups "
                      f"WHERE year = {int(yp.year)})",
        **{role: names[role] for role in ("status", "callers", "qualifies", "cert6", "cert7", "related", "refunds")},
        "no_path": NO_PATH,
        # constants, not join conditions: the planner then sees how many trades the year holds (a year
        # compared with a column made DuckDB estimate ~1,000 rows and build hash tables on 10M)
        "sale_in_year": f"t.local_date BETWEEN DATE '{int(yp.year)}-01-01' AND DATE '{int(yp.year)}-12-31'",
        "run_year": str(int(yp.year)),
        # refunds.sql: hash the refunded sales only, not every live sale of the store (10M trades, in a run:
        # 2.5-3.4 s -> 0.5-0.6 s, issue 14). The view's text leaves it out (migration 0014 holds it unchanged).
        "refunded_sales_only": "\n      AND trade_id IN (SELECT ref_trade_id FROM trades rk WHERE rk.kind = 'refund')",
    }


def view_relations() -> dict[str, str]:
    """Relations of the regulator view: every stored run's compact record (migration 0011)."""
    rel = {
        "params": "exclusion_runs",
        "trades": (f"(SELECT u.run_id, {', '.join('t.' + c.strip() for c in TRADE_COLUMNS.split(','))}, "
                   "u.retracted FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id)"),
        "datasets": "exclusion_datasets", "platforms": "exclusion_platforms", "day_groups": "exclusion_day_groups",
        "qualifies": ("(SELECT run_id, dataset_id, owner_id, qualifies, caller_groups FROM run_dataset_results "
                      "WHERE owner_id IS NOT NULL)"),
        "related": "exclusion_paths", "no_path": NO_PATH,
        # a range of the run's year, not year(local_date) = p.year: DuckDB judged that equality selective and
        # built the four day-group joins' hash tables on the sales (a whole 10M-trade run: out of memory at
        # 6 GB; as a range, 6 s and 0.4 GB for the status, issue 14, migration 0014)
        "sale_in_year": "t.local_date BETWEEN make_date(p.year, 1, 1) AND make_date(p.year, 12, 31)",
        "run_year": "p.year",
        "refunded_sales_only": "",
    }
    rel["status"] = f"({statement('sales', **rel)})"
    rel["cert6"] = f"({statement('cert_texts6', **rel)})"
    rel["cert7"] = f"({statement('cert_texts7', **rel)})"
    rel["refunds"] = f"({statement('refunds', **rel)})"
    return rel


def exclusions_statement(rel: dict[str, str]) -> str:
    """exclusions.sql with sale_reasons.sql inlined, over the relations ``rel``."""
    return statement("exclusions", sale_reasons=statement("sale_reasons", **rel), **rel)


def exclusions_view_sql() -> str:
    """The SELECT of the regulator view ``exclusions`` (migration 0011 holds this text; a test compares)."""
    return exclusions_statement(view_relations())


# The trades of ONE stored run ($run).
RUN_TRADES = (f"(SELECT u.run_id, {', '.join('t.' + c.strip() for c in TRADE_COLUMNS.split(','))}, u.retracted "
              "FROM trade_rows t JOIN exclusion_uploads u ON u.upload_id = t.upload_id WHERE u.run_id = $run)")


def sale_key(alias: str) -> str:
    """A trade's sale key: a sale's own trade id, a refund's sale's (with the platform: P9)."""
    return f"CASE WHEN {alias}.kind = 'sale' THEN {alias}.trade_id ELSE {alias}.ref_trade_id END"


# The ids asked for: one (``$value``) or a list (``$values``, the owner page's every dataset in one derivation).
WHICH = {False: "= $value", True: "IN (SELECT unnest($values))"}


def cut(column: str, many: bool = False) -> str:
    """The run's trades the exclusion rows of the asked ids depend on. Of a dataset: the trades that share a
    sale key with a trade of that dataset (its sales, their refunds, the sales its refunds reverse); of a
    platform: that platform's. Rows of an id are the same whatever other ids' trades the cut also holds (a
    trade's row depends on its own sale key's trades only), so one cut can serve many ids."""
    if column == "platform_id":
        return f"(SELECT t.* FROM {RUN_TRADES} t WHERE t.platform_id {WHICH[many]})"
    return (f"(SELECT t.* FROM {RUN_TRADES} t JOIN (SELECT DISTINCT k.platform_id, {sale_key('k')} AS sale_key "
            f"FROM {RUN_TRADES} k WHERE k.dataset_id {WHICH[many]}) k ON k.platform_id = t.platform_id "
            f"AND k.sale_key = {sale_key('t')})")


def one_run_relations(trades: str = RUN_TRADES) -> dict[str, str]:
    """view_relations() of the one run ``$run`` of year ``$year`` over ``trades`` (its trades, or a cut of them).
    Subqueries, not a MATERIALIZED CTE: over a CTE DuckDB misjudged the sales as few and built the four
    day-group joins' hash tables on them (45 s, 1.5 GB for 2M trades instead of 7 s, 170 MB)."""
    def of_run(table: str) -> str:
        return f"(SELECT * FROM {table} WHERE run_id = $run)"
    rel = {
        "params": of_run("exclusion_runs"), "trades": trades, "datasets": of_run("exclusion_datasets"),
        "platforms": of_run("exclusion_platforms"), "day_groups": of_run("exclusion_day_groups"),
        "qualifies": ("(SELECT run_id, dataset_id, owner_id, qualifies, caller_groups FROM run_dataset_results "
                      "WHERE owner_id IS NOT NULL AND run_id = $run)"),
        "related": of_run("exclusion_paths"), "no_path": NO_PATH,
        # constants of the run's year: the planner then sees how many trades the year holds (see run_relations)
        "sale_in_year": "t.local_date BETWEEN make_date($year, 1, 1) AND make_date($year, 12, 31)",
        "run_year": "$year",
        "refunded_sales_only": "",
    }
    rel["status"] = f"({statement('sales', **rel)})"
    rel["cert6"] = f"({statement('cert_texts6', **rel)})"
    rel["cert7"] = f"({statement('cert_texts7', **rel)})"
    rel["refunds"] = f"({statement('refunds', **rel)})"
    return rel


def one_run_exclusions_sql(column: str, many: bool = False, trades: str | None = None) -> str:
    """The rows of the view ``exclusions`` of run ``$run`` (of year ``$year``) and clause ``$clause`` whose
    ``column`` (dataset_id or platform_id) is ``$value``, in the order explain lists them, at most ``$limit``.
    The same rows as filtering the view, but the trades are cut to that dataset or platform (with their
    sales and refunds) BEFORE the joins, so one dataset costs its own trades, not the store's (issue 12).
    ``many``: the first ``$limit`` rows of EACH id in the list ``$values``, with the id first, in one derivation
    (the owner page's datasets: one pass over the store instead of one per dataset). ``trades``: the cut
    already materialised (the statement reads its trades four times; a cut of many datasets is worth
    computing once), else ``cut(column, many)`` inline."""
    derived = exclusions_statement(one_run_relations(trades or cut(column, many)))
    order = "reason, platform_id, trade_id, upload_id"
    head = f"SELECT {column}, " if many else "SELECT "
    tail = (f"QUALIFY row_number() OVER (PARTITION BY {column} ORDER BY {order}) <= $limit\n"
            f"ORDER BY {column}, {order}") if many else f"ORDER BY {order} LIMIT $limit"
    return (f"{head}platform_id, trade_id, kind, reason, detail FROM (\n"
            f"SELECT run_id, clause, platform_id, trade_id, reason, detail, dataset_id, kind, upload_id "
            f"FROM exclusion_rows WHERE run_id = $run\nUNION ALL\n"
            f"SELECT run_id, clause, platform_id, trade_id, reason, detail, dataset_id, kind, upload_id FROM (\n"
            f"{derived}\n) d\n) x WHERE clause = $clause AND {column} {WHICH[many]}\n{tail}")
