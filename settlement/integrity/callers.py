"""Integrity codes over the run's stored clause 6 results: who made a dataset qualify, and who got paid.

``stage_groups`` writes the TEMP table ``groups`` (named per call, ``ctx.table``) once per ``compute_flags``:
one row per counted caller group of each (dataset, owner) of the run (``run_caller_buyers``, P10.3) with the dataset's result
(``run_dataset_results``: qualifies, base, callers, threshold, P10.4–P10.5) and the owner's year-graph group
(``affiliate_groups``, P8). Each code then returns one SELECT yielding the columns of
``context.FLAG_COLUMNS`` (one row per flag): numbers first over ``groups``, lists of buyers only for the
few candidates (ordered list aggregates over millions of rows cost seconds). Trade evidence is asked for as
(dataset, buyer) pairs in ``ev_pairs`` and resolved once by ``flags``. Imports ``settlement.core`` only.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from settlement.integrity.context import FlagContext, dec, group_of


def stage_groups(con: duckdb.DuckDBPyConnection, ctx: FlagContext) -> None:
    """TEMP ``groups`` (see module docstring) and ``edges``: its rows whose caller group is another owner
    group, the only owner group → caller group edges that can lie on a cycle (RECIPROCAL_CALLERS,
    CALLER_RING). Owner groups are few (hundreds), caller groups millions: the cut leaves a small table."""
    join, owner_group = group_of("r.owner_id", "og", ctx)
    groups = ctx.table("groups")
    con.execute(f"""
CREATE TEMP TABLE {groups} AS
WITH g AS (
    SELECT cb.dataset_id, cb.owner_id, cb.group_id, sum(cb.net_amount) AS net, count(*) AS buyers
    FROM run_caller_buyers cb WHERE cb.run_id = {ctx.run_id} AND cb.group_counted
    GROUP BY ALL
), r AS (  -- the datasets' results with their owner's group: one join of the millions of groups, to a small table
    SELECT r.dataset_id, r.owner_id, {owner_group} AS owner_group, r.qualifies, r.base, r.caller_groups AS callers,
           r.caller_threshold AS thr
    FROM run_dataset_results r {join} WHERE r.run_id = {ctx.run_id}
)
SELECT g.*, r.owner_group, r.qualifies, r.base, r.callers, r.thr
FROM g JOIN r ON r.dataset_id = g.dataset_id
     AND r.owner_id = g.owner_id  -- eligible sales always have an owner (P10.2); plain = keeps a hash join
""")
    con.execute(f"""
CREATE TEMP TABLE {ctx.table("edges")} AS
SELECT owner_group AS src, group_id AS dst, dataset_id, owner_id, qualifies FROM {groups}
WHERE owner_group <> group_id AND group_id IN (  -- every owner's group: a superset of those in groups, and
    SELECT DISTINCT {owner_group} FROM run_dataset_results r {join}  -- a small one (the hash is built on it)
    WHERE r.run_id = {ctx.run_id} AND r.owner_id IS NOT NULL)""")


def _buyers(ctx: FlagContext, keys: str) -> str:
    """Buyers of the counted caller groups named by ``keys`` (a relation of dataset_id, owner_id, group_id)."""
    return f"""
SELECT cb.dataset_id, cb.owner_id, cb.group_id, cb.buyer_id FROM run_caller_buyers cb
SEMI JOIN ({keys}) k ON k.dataset_id = cb.dataset_id AND k.owner_id = cb.owner_id AND k.group_id = cb.group_id
WHERE cb.run_id = {ctx.run_id} AND cb.group_counted"""


def thin_threshold_sql(ctx: FlagContext) -> str:
    """THIN_THRESHOLD: the smallest caller groups of a qualifying dataset whose nets together stay below
    ``tiny_share`` of its base are "tiny"; dropping them would leave it at or under the caller threshold
    (P10.3, P10.4). That holds iff the base minus the ``threshold`` largest group nets is under the share,
    so the running sums are computed for those datasets only."""
    tiny = dec(ctx.th("THIN_THRESHOLD", "tiny_share"))
    groups = ctx.table("groups")
    return f"""
WITH cand AS (  -- exact: dropping the prefix leaves <= thr groups iff base - (the thr largest nets) < share x base
    SELECT dataset_id, owner_id FROM {groups} WHERE qualifies GROUP BY dataset_id, owner_id
    HAVING any_value(base) - list_sum(max(net, {ctx.caller_threshold})) < {tiny} * any_value(base)
), c AS (  -- smallest first: a group is tiny while the running sum of the nets stays under the share
    SELECT g.*, sum(g.net) OVER (PARTITION BY g.dataset_id, g.owner_id ORDER BY g.net, g.group_id) < {tiny} * g.base AS tiny
    FROM {groups} g SEMI JOIN cand ON cand.dataset_id = g.dataset_id AND cand.owner_id = g.owner_id
), d AS (
    SELECT dataset_id, owner_id, any_value(base) AS base, any_value(callers) AS callers, any_value(thr) AS thr,
           count(*) FILTER (WHERE NOT tiny) AS solid, count(*) FILTER (WHERE tiny) AS n_tiny,
           sum(net) FILTER (WHERE tiny) AS tiny_net
    FROM c GROUP BY dataset_id, owner_id
    HAVING count(*) FILTER (WHERE tiny) > 0 AND count(*) FILTER (WHERE NOT tiny) <= any_value(thr)
), b AS (
    SELECT dataset_id, owner_id, list_sort(list_distinct(list(group_id))) AS tiny_groups,
           list_sort(list_distinct(list(buyer_id))) AS tiny_buyers
    FROM ({_buyers(ctx, "SELECT dataset_id, owner_id, group_id FROM c WHERE tiny")})
    SEMI JOIN d USING (dataset_id, owner_id) GROUP BY dataset_id, owner_id
)
SELECT 'THIN_THRESHOLD' AS code, dataset_id, NULL AS platform_id,
       list_sort(list_distinct(list_append(tiny_buyers, owner_id))) AS parties, []::VARCHAR[] AS evidence,
       [struct_pack(d := dataset_id, b := x) FOR x IN tiny_buyers] AS ev_pairs,
       to_json(struct_pack(owner_id := owner_id, caller_groups := callers, caller_threshold := thr,
                           base := base::VARCHAR, tiny_groups := tiny_groups, tiny_net := tiny_net::VARCHAR,
                           groups_left := solid, tiny_share := '{ctx.th("THIN_THRESHOLD", "tiny_share")}'))::VARCHAR AS figures,
       format('dataset {{}} of {{}} qualifies with {{}} caller groups (needs more than {{}}, P10.4), but its {{}} '
              || 'smallest together net only {{}} of a base of {{}} (under {{}}%); without them it has {{}}',
              dataset_id, owner_id, callers, thr, n_tiny, tiny_net, base,
              {dec(ctx.th("THIN_THRESHOLD", "tiny_share"))} * 100, solid) AS detail
FROM d JOIN b USING (dataset_id, owner_id)"""


def late_callers_sql(ctx: FlagContext) -> str:
    """LATE_CALLERS: caller groups whose first purchase of the dataset in the year falls in its last
    ``last_days`` in-scope days (every buyer of the group first bought it then), who tip it over the threshold
    and together net at most ``max_late_share`` of the base. Only (dataset, buyer) pairs with a late sale are
    looked at: groups all of whose buyers have a late sale, of datasets that dropping all those groups would
    bring to the threshold, are the candidates; only their buyers' earlier sales are then looked up."""
    late_from = ctx.last_day - timedelta(days=int(ctx.th("LATE_CALLERS", "last_days")) - 1)
    share = dec(ctx.th("LATE_CALLERS", "max_late_share"))
    groups = ctx.table("groups")
    return f"""
WITH late0 AS (
    SELECT DISTINCT dataset_id, buyer_id FROM trades t WHERE {ctx.year_sales("t")} AND t.local_date >= DATE '{late_from}'
), late AS (  -- necessary: a dataset has no more late groups than late buyers, so dropping as many caller
              -- groups must bring it to the threshold (most datasets stop here, before the callers are read)
    SELECT l.* FROM late0 l SEMI JOIN (
        SELECT l.dataset_id FROM (SELECT dataset_id, count(*) AS n FROM late0 GROUP BY dataset_id) l
        JOIN run_dataset_results r ON r.run_id = {ctx.run_id} AND r.dataset_id = l.dataset_id
        WHERE r.qualifies AND r.caller_groups - l.n <= r.caller_threshold
    ) d ON d.dataset_id = l.dataset_id
), lb AS (  -- counted callers with a sale in the last days
    SELECT cb.dataset_id, cb.owner_id, cb.group_id, cb.buyer_id FROM run_caller_buyers cb
    SEMI JOIN late l ON l.dataset_id = cb.dataset_id AND l.buyer_id = cb.buyer_id
    WHERE cb.run_id = {ctx.run_id} AND cb.group_counted
), c AS (SELECT dataset_id, owner_id, group_id, count(*) AS n FROM lb GROUP BY ALL),
c_d AS (  -- necessary: dropping every group with a late buyer leaves the qualifying dataset at or under the
          -- threshold (from the small results table: most datasets stop here, before the groups are read)
    SELECT c.dataset_id, c.owner_id FROM c JOIN run_dataset_results r ON r.run_id = {ctx.run_id}
         AND r.dataset_id = c.dataset_id AND r.owner_id = c.owner_id
    WHERE r.qualifies GROUP BY ALL HAVING any_value(r.caller_groups) - count(*) <= any_value(r.caller_threshold)
), cand_g AS (  -- necessary: every buyer of a late group has a late sale
    SELECT g.dataset_id, g.owner_id, g.group_id, g.callers, g.thr
    FROM (SELECT * FROM c SEMI JOIN c_d ON c_d.dataset_id = c.dataset_id AND c_d.owner_id = c.owner_id) c
    JOIN {groups} g ON g.dataset_id = c.dataset_id AND g.owner_id = c.owner_id AND g.group_id = c.group_id
    WHERE g.qualifies AND c.n = g.buyers
), cand AS (  -- necessary: dropping every such group leaves the dataset at or under the threshold
    SELECT c.dataset_id, c.owner_id, c.group_id FROM cand_g c
    SEMI JOIN (SELECT dataset_id, owner_id FROM cand_g GROUP BY ALL
               HAVING any_value(callers) - count(*) <= any_value(thr)) d
         ON d.dataset_id = c.dataset_id AND d.owner_id = c.owner_id
), cl AS (  -- the buyers of the candidate groups: only their earlier sales are looked up
    SELECT lb.* FROM lb SEMI JOIN cand c ON c.dataset_id = lb.dataset_id AND c.owner_id = lb.owner_id
         AND c.group_id = lb.group_id
), early AS (
    SELECT DISTINCT t.dataset_id, t.buyer_id FROM trades t
    SEMI JOIN cl ON cl.dataset_id = t.dataset_id AND cl.buyer_id = t.buyer_id
    WHERE {ctx.year_sales("t")} AND t.local_date < DATE '{late_from}'
), lg AS (  -- the late groups: no buyer bought the dataset earlier in the year
    SELECT cl.dataset_id, cl.owner_id, cl.group_id, list(cl.buyer_id) AS buyers FROM cl
    LEFT JOIN early e ON e.dataset_id = cl.dataset_id AND e.buyer_id = cl.buyer_id
    GROUP BY ALL HAVING count(e.buyer_id) = 0
), d AS (
    SELECT g.dataset_id, g.owner_id, any_value(g.base) AS base, any_value(g.callers) AS callers,
           any_value(g.thr) AS thr, list_sort(list(g.group_id)) AS late_groups,
           list_sort(flatten(list(lg.buyers))) AS late_buyers, sum(g.net) AS late_net
    FROM {groups} g JOIN lg USING (dataset_id, owner_id, group_id)
    GROUP BY g.dataset_id, g.owner_id
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
WHERE callers - len(late_groups) <= thr AND late_net <= {share} * base"""


def caller_edges_sql(ctx: FlagContext, qualifying_only: bool) -> str:
    """Owner group → caller group edges of the year between two owner groups, with their (dataset, owner)
    (TEMP ``edges``, see ``stage_groups``; a caller is unrelated to the owner on the sale date, but the year
    graph may join them: such self-edges are dropped)."""
    where = "WHERE qualifies" if qualifying_only else ""
    return f"SELECT src, dst, dataset_id, owner_id, qualifies FROM {ctx.table('edges')} {where}"


def reciprocal_callers_sql(ctx: FlagContext) -> str:
    """RECIPROCAL_CALLERS: two owner groups each a counted caller group of a dataset of the other."""
    need_q = "p.any_q" if int(ctx.th("RECIPROCAL_CALLERS", "require_qualifying")) != 0 else "true"
    return f"""
WITH e AS (SELECT src, dst, bool_or(qualifies) AS q FROM ({caller_edges_sql(ctx, False)}) GROUP BY src, dst),
p AS (SELECT a.src AS g1, a.dst AS g2, a.q OR b.q AS any_q FROM e a JOIN e b ON b.src = a.dst AND b.dst = a.src
      WHERE a.src < a.dst),
x AS (
    SELECT p.g1, p.g2, g.dataset_id, g.owner_id, g.dst AS group_id FROM p JOIN {ctx.table("edges")} g
           ON g.src = p.g1 AND g.dst = p.g2 WHERE {need_q}
    UNION ALL
    SELECT p.g1, p.g2, g.dataset_id, g.owner_id, g.dst AS group_id FROM p JOIN {ctx.table("edges")} g
           ON g.src = p.g2 AND g.dst = p.g1 WHERE {need_q}
), xb AS (
    SELECT x.g1, x.g2, x.dataset_id, x.owner_id, b.buyer_id
    FROM x JOIN ({_buyers(ctx, "SELECT dataset_id, owner_id, group_id FROM x")}) b
         ON b.dataset_id = x.dataset_id AND b.owner_id = x.owner_id AND b.group_id = x.group_id
), agg AS (
    SELECT g1, g2, list_sort(list_distinct(list(dataset_id))) AS datasets,
           list_sort(list_distinct(flatten(list([owner_id, buyer_id])))) AS parties,
           list(DISTINCT struct_pack(d := dataset_id, b := buyer_id)) AS ev_pairs
    FROM xb GROUP BY g1, g2
)
SELECT 'RECIPROCAL_CALLERS' AS code, NULL AS dataset_id, NULL AS platform_id, parties, []::VARCHAR[] AS evidence,
       ev_pairs, to_json(struct_pack(groups := [g1, g2], datasets := datasets))::VARCHAR AS figures,
       format('owner groups {{}} and {{}} are counted callers of each other''s datasets in {ctx.year} ({{}})',
              g1, g2, array_to_string(datasets, ', ')) AS detail
FROM agg"""


def shared_caller_set_sql(ctx: FlagContext) -> str:
    """SHARED_CALLER_SET: qualifying datasets of mutually unrelated owners (different year-graph groups)
    that qualify with exactly the same set of caller groups. Sets are first compared by (size, two hashes),
    then exactly for the candidates only."""
    n = int(ctx.th("SHARED_CALLER_SET", "min_datasets"))
    groups = ctx.table("groups")
    return f"""
WITH s AS (
    SELECT dataset_id, owner_id, any_value(owner_group) AS og, count(*) AS k, sum(hash(group_id)) AS h1,
           bit_xor(hash(group_id || '#')) AS h2
    FROM {groups} WHERE qualifies GROUP BY dataset_id, owner_id
), cand AS (
    SELECT s.* FROM s SEMI JOIN (SELECT k, h1, h2 FROM s GROUP BY ALL HAVING count(DISTINCT og) >= {n}) c
    ON c.k = s.k AND c.h1 = s.h1 AND c.h2 = s.h2
), exact AS (
    SELECT c.dataset_id, c.owner_id, c.og, list_sort(list(g.group_id)) AS callers
    FROM cand c JOIN {groups} g ON g.dataset_id = c.dataset_id AND g.owner_id = c.owner_id GROUP BY ALL
), sets AS (
    SELECT callers, list_sort(list(dataset_id)) AS datasets, list_sort(list_distinct(list(owner_id))) AS owners,
           count(DISTINCT og) AS owner_groups
    FROM exact GROUP BY callers HAVING count(DISTINCT og) >= {n}
), bb AS (
    SELECT e.callers, cb.dataset_id, cb.buyer_id
    FROM sets JOIN exact e ON e.callers = sets.callers
    JOIN run_caller_buyers cb ON cb.run_id = {ctx.run_id} AND cb.group_counted AND cb.dataset_id = e.dataset_id
         AND cb.owner_id = e.owner_id
), b AS (
    SELECT callers, list_sort(list_distinct(list(buyer_id))) AS buyers,
           list(struct_pack(d := dataset_id, b := buyer_id)) AS ev_pairs
    FROM bb GROUP BY callers
)
SELECT 'SHARED_CALLER_SET' AS code, NULL AS dataset_id, NULL AS platform_id,
       list_sort(list_concat(owners, buyers)) AS parties, []::VARCHAR[] AS evidence, ev_pairs,
       to_json(struct_pack(caller_groups := callers, datasets := datasets, owners := owners,
                           owner_groups := owner_groups))::VARCHAR AS figures,
       format('{{}} datasets of {{}} unrelated owner groups ({{}}) qualify with the same {{}} caller groups: {{}}',
              len(datasets), owner_groups, array_to_string(datasets, ', '), len(callers),
              array_to_string(callers, ', ')) AS detail
FROM sets JOIN b USING (callers)"""


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
