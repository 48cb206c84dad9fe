"""Integrity codes over the run's stored clause 6 results: who made a dataset qualify, and who got paid.

Each function returns one SELECT yielding the columns of ``context.FLAG_COLUMNS`` (one row per flag),
read from ``run_caller_buyers`` (counted caller groups per dataset and owner, P10.3), ``run_dataset_results``
(qualifies, base, target, cap, P10.4–P10.7) and ``affiliate_groups`` (year graph, P8) of the run. Trade
evidence is asked for as (dataset, buyer) pairs in ``ev_pairs`` and resolved once by ``flags``.
Imports ``settlement.core`` only (through ``context``).
"""

from __future__ import annotations

from datetime import timedelta

from settlement.integrity.context import FlagContext, dec, group_of


def _counted(ctx: FlagContext) -> str:
    """Counted caller groups per qualifying-or-not (dataset, owner) of the run, with the dataset's result."""
    return f"""
SELECT cb.dataset_id, cb.owner_id, cb.group_id, cb.buyer_id, cb.net_amount, r.qualifies, r.base,
       r.caller_groups, r.caller_threshold
FROM run_caller_buyers cb
JOIN run_dataset_results r ON r.run_id = cb.run_id AND r.dataset_id = cb.dataset_id
     AND r.owner_id IS NOT DISTINCT FROM cb.owner_id
WHERE cb.run_id = {ctx.run_id} AND cb.group_counted"""


def thin_threshold_sql(ctx: FlagContext) -> str:
    """THIN_THRESHOLD: the smallest caller groups of a qualifying dataset whose nets together stay below
    ``tiny_share`` of its base are "tiny"; dropping them would leave it at or under the caller threshold
    (P10.3, P10.4)."""
    tiny = dec(ctx.th("THIN_THRESHOLD", "tiny_share"))
    return f"""
WITH g AS (
    SELECT dataset_id, owner_id, group_id, any_value(base) AS base, any_value(caller_groups) AS callers,
           any_value(caller_threshold) AS thr, sum(net_amount) AS net, list(buyer_id ORDER BY buyer_id) AS buyers
    FROM ({_counted(ctx)}) WHERE qualifies GROUP BY dataset_id, owner_id, group_id
), c AS (  -- smallest first: a group is tiny while the running sum of the nets stays under the share
    SELECT *, sum(net) OVER (PARTITION BY dataset_id, owner_id ORDER BY net, group_id) < {tiny} * base AS tiny
    FROM g
), d AS (
    SELECT dataset_id, owner_id, any_value(base) AS base, any_value(callers) AS callers, any_value(thr) AS thr,
           count(*) FILTER (WHERE NOT tiny) AS solid,
           list(group_id ORDER BY group_id) FILTER (WHERE tiny) AS tiny_groups,
           flatten(list(buyers) FILTER (WHERE tiny)) AS tiny_buyers,
           sum(net) FILTER (WHERE tiny) AS tiny_net
    FROM c GROUP BY dataset_id, owner_id
    HAVING count(*) FILTER (WHERE tiny) > 0 AND count(*) FILTER (WHERE NOT tiny) <= any_value(thr)
)
SELECT 'THIN_THRESHOLD' AS code, dataset_id, NULL AS platform_id,
       list_sort(list_distinct(list_append(tiny_buyers, owner_id))) AS parties, []::VARCHAR[] AS evidence,
       [struct_pack(d := dataset_id, b := x) FOR x IN tiny_buyers] AS ev_pairs,
       to_json(struct_pack(owner_id := owner_id, caller_groups := callers, caller_threshold := thr,
                           base := base::VARCHAR, tiny_groups := tiny_groups, tiny_net := tiny_net::VARCHAR,
                           groups_left := solid, tiny_share := '{ctx.th("THIN_THRESHOLD", "tiny_share")}'))::VARCHAR AS figures,
       format('dataset {{}} of {{}} qualifies with {{}} caller groups (needs more than {{}}, P10.4), but its {{}} '
              || 'smallest together net only {{}} of a base of {{}} (under {{}}%); without them it has {{}}',
              dataset_id, owner_id, callers, thr, len(tiny_groups), tiny_net, base,
              {dec(ctx.th("THIN_THRESHOLD", "tiny_share"))} * 100, solid) AS detail
FROM d"""


def late_callers_sql(ctx: FlagContext) -> str:
    """LATE_CALLERS: caller groups whose first purchase of the dataset in the year falls in its last
    ``last_days`` in-scope days, who tip it over the threshold and net at most ``max_late_share`` of the base."""
    late_from = ctx.last_day - timedelta(days=int(ctx.th("LATE_CALLERS", "last_days")) - 1)
    share = dec(ctx.th("LATE_CALLERS", "max_late_share"))
    return f"""
WITH c AS ({_counted(ctx)}),
first AS (  -- the first live purchase of each caller buyer of a dataset in the year
    SELECT t.dataset_id, t.buyer_id, min(t.local_date) AS first_day
    FROM trades t WHERE {ctx.year_sales("t")}
      AND (t.dataset_id, t.buyer_id) IN (SELECT (dataset_id, buyer_id) FROM c WHERE qualifies)
    GROUP BY ALL
), g AS (
    SELECT c.dataset_id, c.owner_id, c.group_id, any_value(c.base) AS base, any_value(c.caller_groups) AS callers,
           any_value(c.caller_threshold) AS thr, sum(c.net_amount) AS net, min(f.first_day) AS first_day,
           list(c.buyer_id ORDER BY c.buyer_id) AS buyers
    FROM c JOIN first f ON f.dataset_id = c.dataset_id AND f.buyer_id = c.buyer_id
    WHERE c.qualifies GROUP BY c.dataset_id, c.owner_id, c.group_id
), d AS (
    SELECT dataset_id, owner_id, any_value(base) AS base, any_value(callers) AS callers, any_value(thr) AS thr,
           list(group_id ORDER BY group_id) FILTER (WHERE first_day >= DATE '{late_from}') AS late_groups,
           flatten(list(buyers) FILTER (WHERE first_day >= DATE '{late_from}')) AS late_buyers,
           coalesce(sum(net) FILTER (WHERE first_day >= DATE '{late_from}'), 0) AS late_net
    FROM g GROUP BY dataset_id, owner_id
)
SELECT 'LATE_CALLERS' AS code, dataset_id, NULL AS platform_id,
       list_sort(list_distinct(list_append(late_buyers, owner_id))) AS parties, []::VARCHAR[] AS evidence,
       [struct_pack(d := dataset_id, b := x) FOR x IN late_buyers] AS ev_pairs,
       to_json(struct_pack(owner_id := owner_id, caller_groups := callers, caller_threshold := thr,
                           late_groups := late_groups, late_from := DATE '{late_from}', late_net := late_net::VARCHAR,
                           base := base::VARCHAR, max_late_share := '{ctx.th("LATE_CALLERS", "max_late_share")}'))::VARCHAR AS figures,
       format('dataset {{}} of {{}} reaches {{}} caller groups only with {{}} group(s) whose first purchase is on or after '
              || '{late_from} (last {ctx.th("LATE_CALLERS", "last_days")} days); they net {{}} of a base of {{}}',
              dataset_id, owner_id, callers, len(late_groups), late_net, base) AS detail
FROM d
WHERE len(late_groups) > 0 AND callers - len(late_groups) <= thr AND late_net <= {share} * base"""


def caller_edges_sql(ctx: FlagContext, qualifying_only: bool) -> str:
    """Owner group → caller group edges of the year (counted callers; self-edges cannot occur: a caller is
    unrelated to the owner on the sale date, but the year graph may join them, so they are dropped)."""
    join, owner_group = group_of("c.owner_id", "og", ctx)
    where = "WHERE c.qualifies" if qualifying_only else ""
    return f"""
SELECT {owner_group} AS src, c.group_id AS dst, c.dataset_id, c.owner_id, c.buyer_id, c.qualifies
FROM ({_counted(ctx)}) c {join} {where}"""


def reciprocal_callers_sql(ctx: FlagContext) -> str:
    """RECIPROCAL_CALLERS: two owner groups each a counted caller group of a dataset of the other."""
    need_q = int(ctx.th("RECIPROCAL_CALLERS", "require_qualifying")) != 0
    return f"""
WITH e AS (SELECT * FROM ({caller_edges_sql(ctx, False)}) WHERE src <> dst),
p AS (
    SELECT least(a.src, a.dst) AS g1, greatest(a.src, a.dst) AS g2,
           list(DISTINCT a.dataset_id ORDER BY a.dataset_id) AS datasets,
           list(DISTINCT x ORDER BY x) AS parties, bool_or(a.qualifies) AS any_qualifies,
           list(DISTINCT struct_pack(d := a.dataset_id, b := a.buyer_id)) AS ev_pairs
    FROM e a, unnest([a.owner_id, a.buyer_id]) AS u(x)
    WHERE EXISTS (SELECT 1 FROM e b WHERE b.src = a.dst AND b.dst = a.src)
    GROUP BY ALL
)
SELECT 'RECIPROCAL_CALLERS' AS code, NULL AS dataset_id, NULL AS platform_id, parties, []::VARCHAR[] AS evidence,
       ev_pairs,
       to_json(struct_pack(groups := [g1, g2], datasets := datasets, any_qualifies := any_qualifies))::VARCHAR AS figures,
       format('owner groups {{}} and {{}} are counted callers of each other''s datasets in {ctx.year} ({{}})',
              g1, g2, array_to_string(datasets, ', ')) AS detail
FROM p {"WHERE any_qualifies" if need_q else ""}"""


def shared_caller_set_sql(ctx: FlagContext) -> str:
    """SHARED_CALLER_SET: qualifying datasets of mutually unrelated owners (different year-graph groups)
    that qualify with exactly the same set of caller groups."""
    join, owner_group = group_of("s.owner_id", "og", ctx)
    n = int(ctx.th("SHARED_CALLER_SET", "min_datasets"))
    return f"""
WITH s AS (
    SELECT dataset_id, owner_id, list(DISTINCT group_id ORDER BY group_id) AS callers,
           list(DISTINCT buyer_id ORDER BY buyer_id) AS buyers
    FROM ({_counted(ctx)}) WHERE qualifies GROUP BY dataset_id, owner_id
), q AS (SELECT s.*, {owner_group} AS owner_group FROM s {join}),
sets AS (
    SELECT callers, list(dataset_id ORDER BY dataset_id) AS datasets, list(DISTINCT owner_id ORDER BY owner_id) AS owners,
           count(DISTINCT owner_group) AS owner_groups, list_sort(list_distinct(flatten(list(buyers)))) AS buyers,
           flatten(list([struct_pack(d := dataset_id, b := x) FOR x IN buyers])) AS ev_pairs
    FROM q GROUP BY callers HAVING count(DISTINCT owner_group) >= {n}
)
SELECT 'SHARED_CALLER_SET' AS code, NULL AS dataset_id, NULL AS platform_id,
       list_sort(list_concat(owners, buyers)) AS parties, []::VARCHAR[] AS evidence, ev_pairs,
       to_json(struct_pack(caller_groups := callers, datasets := datasets, owners := owners,
                           owner_groups := owner_groups))::VARCHAR AS figures,
       format('{{}} datasets of {{}} unrelated owner groups ({{}}) qualify with the same {{}} caller groups: {{}}',
              len(datasets), owner_groups, array_to_string(datasets, ', '), len(callers),
              array_to_string(callers, ', ')) AS detail
FROM sets"""


def cap_splitting_sql(ctx: FlagContext) -> str:
    """CAP_SPLITTING: an affiliate group (year graph) whose member enterprises together receive more than
    ``caps`` clause 6 caps in the year (P10.7 caps each enterprise, not each group)."""
    join, owner_group = group_of("o.owner_id", "og", ctx)
    caps = dec(ctx.th("CAP_SPLITTING", "caps"))
    return f"""
WITH o AS (
    SELECT owner_id, sum(target) AS received, max(owner_cap) AS cap, list(dataset_id ORDER BY dataset_id) AS datasets
    FROM run_dataset_results WHERE run_id = {ctx.run_id} AND owner_id IS NOT NULL AND target > 0
    GROUP BY owner_id
), g AS (
    SELECT {owner_group} AS grp, list(o.owner_id ORDER BY o.owner_id) AS owners, sum(o.received) AS received,
           max(o.cap) AS cap, list(o.received::VARCHAR ORDER BY o.owner_id) AS per_owner,
           flatten(list(o.datasets)) AS datasets
    FROM o {join} GROUP BY ALL
    HAVING count(*) >= 2 AND sum(o.received) > {caps} * max(o.cap)
)
SELECT 'CAP_SPLITTING' AS code, NULL AS dataset_id, NULL AS platform_id, owners AS parties,
       []::VARCHAR[] AS evidence, []::STRUCT(d VARCHAR, b VARCHAR)[] AS ev_pairs,
       to_json(struct_pack(group_id := grp, owners := owners, received := per_owner, total := received::VARCHAR,
                           cap := cap::VARCHAR, datasets := datasets))::VARCHAR AS figures,
       format('affiliate group {{}}: {{}} member enterprises receive {{}} under clause 6 in {ctx.year}, more than '
              || 'one cap of {{}} (P10.7 caps each enterprise)', grp, len(owners), received, cap) AS detail
FROM g"""
