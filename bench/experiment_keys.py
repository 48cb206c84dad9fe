"""Would integer surrogate keys bring a 10M-trade run near 10 s? (issue 14) An experiment, not the engine.

    .venv/bin/python bench/experiment_keys.py STORE [--year 2024] [--repeats 2]

On a COPY of a store whose year has been settled (it needs the year's ``affiliate_day_groups``):

1. the store's real sale-status statement (``sales.sql`` as a run issues it), counted without being stored,
   then materialised as the run does (a TEMP table): what storing 9.8M status rows costs by itself;
2. a reduced status (the dataset registry join and the four day-group joins, the columns callers need) and
   the callers aggregate, once over the store's string ids and once over integer keys (dictionaries of
   parties and datasets, the trades re-keyed first: what ingest would store), same data, same statements.

Prints one line per statement: wall seconds and process CPU-seconds, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from settlement.clauses import targets as targets_module  # noqa: E402
from settlement.core.params import load_params  # noqa: E402

from profile_run import cpu, store_copy  # noqa: E402  (bench/ is the script's folder)

STRING = {"trades": "(SELECT rowid AS tk, * FROM trade_rows)", "datasets": "datasets", "party": "party_id",
          "P": "platform_id", "D": "dataset_id", "S": "seller_id", "B": "buyer_id", "O": "owner_id"}
INTEGER = {"trades": "ti", "datasets": "di", "party": "party_k",
           "P": "platform_k", "D": "dataset_k", "S": "seller_k", "B": "buyer_k", "O": "owner_k"}

STATUS = """CREATE OR REPLACE TEMP TABLE st AS WITH s AS (
    SELECT t.tk, t.{P}, t.{D}, t.{S}, t.{B}, t.local_date, t.upload_id, t.amount AS net, d.{O},
           d.certified_on IS NOT NULL AND d.certified_on <= t.local_date AS ds_certified
    FROM {trades} t LEFT JOIN {datasets} d ON d.{D} = t.{D}
         AND t.local_date BETWEEN coalesce(d.owner_from, DATE '0001-01-01') AND coalesce(d.owner_until, DATE '9999-12-31')
    WHERE t.kind = 'sale' AND t.local_date BETWEEN make_date({year}, 1, 1) AND make_date({year}, 12, 31))
SELECT s.*, coalesce(gb.group_id = go.group_id, false) AS rel_owner, coalesce(gb.group_id = gs.group_id, false) AS rel_bs,
       coalesce(gp.group_id = gb.group_id, false) AS rel_pb, coalesce(gp.group_id = gs.group_id, false) AS rel_ps
FROM s LEFT JOIN {groups} gb ON gb.{party} = s.{B} AND s.local_date BETWEEN gb.day_from AND gb.day_to
LEFT JOIN {groups} go ON go.{party} = s.{O} AND s.local_date BETWEEN go.day_from AND go.day_to
LEFT JOIN {groups} gs ON gs.{party} = s.{S} AND s.local_date BETWEEN gs.day_from AND gs.day_to
LEFT JOIN {groups} gp ON gp.{party} = s.{P} AND s.local_date BETWEEN gp.day_from AND gp.day_to"""

CALLERS = """CREATE OR REPLACE TEMP TABLE cb AS WITH b AS (
    SELECT {D}, {O}, {B}, count(*) AS n, sum(net) AS net FROM st WHERE ds_certified AND NOT rel_owner GROUP BY ALL)
SELECT b.*, c.counted FROM b JOIN (SELECT {D}, {O}, sum(net) > 0 AS counted FROM b GROUP BY ALL) c USING ({D}, {O})"""

DICTIONARIES = (
    ("parties", """CREATE OR REPLACE TEMP TABLE pk AS SELECT party_id, row_number() OVER () AS k FROM (
        SELECT seller_id AS party_id FROM trade_rows UNION SELECT buyer_id FROM trade_rows
        UNION SELECT platform_id FROM trade_rows UNION SELECT owner_id FROM datasets)"""),
    ("datasets", "CREATE OR REPLACE TEMP TABLE dk AS SELECT dataset_id, row_number() OVER () AS k "
                 "FROM (SELECT DISTINCT dataset_id FROM trade_rows)"),
    ("trades re-keyed", """CREATE OR REPLACE TEMP TABLE ti AS SELECT t.rowid AS tk, p.k AS platform_k, d.k AS dataset_k,
        s.k AS seller_k, b.k AS buyer_k, t.local_date, t.amount, t.kind, t.upload_id FROM trade_rows t
        JOIN pk p ON p.party_id = t.platform_id JOIN pk s ON s.party_id = t.seller_id
        JOIN pk b ON b.party_id = t.buyer_id JOIN dk d ON d.dataset_id = t.dataset_id"""),
    ("registry re-keyed", """CREATE OR REPLACE TEMP TABLE di AS SELECT dk.k AS dataset_k, o.k AS owner_k, certified_on,
        certified_until, owner_from, owner_until FROM datasets x JOIN dk USING (dataset_id)
        JOIN pk o ON o.party_id = x.owner_id"""),
)


def timed(con, label: str, sql: str, repeats: int) -> None:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, used = time.perf_counter(), cpu()
        con.execute(sql).fetchall()
        walls.append(time.perf_counter() - wall)
        cpus.append(cpu() - used)
    print(f"{label:52s} {statistics.median(walls):6.2f} s {statistics.median(cpus):6.1f} CPU-s", flush=True)


def status_statement(con, year: int) -> str:
    """The SELECT of the run's own sale-status statement, as ``staged_targets`` issues it."""
    seen: dict[str, str] = {}

    class Recording:
        def execute(self, sql, *args, **kwargs):
            found = re.search(r"TEMP TABLE (\w+) AS", str(sql))
            if found:
                seen[found.group(1).rsplit("_", 1)[-1]] = str(sql)
            return con.execute(sql, *args, **kwargs)

        def __getattr__(self, name):
            return getattr(con, name)

    with targets_module.staged_targets(Recording(), year, params=load_params()):
        pass
    text = seen["status"]
    return text[text.index(" AS ") + 4:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store", type=Path)
    ap.add_argument("--year", type=int, default=2024)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with store_copy(args.store) as con:
        year, n = int(args.year), args.repeats
        status = status_statement(con, year)
        timed(con, "run's status statement, counted (not stored)", f"SELECT count(*) FROM ({status})", n)
        timed(con, "run's status statement, stored as a TEMP table", f"CREATE OR REPLACE TEMP TABLE zz AS {status}", n)
        con.execute(f"CREATE OR REPLACE TEMP TABLE gs AS SELECT * FROM affiliate_day_groups WHERE year = {year}")
        for label, sql in DICTIONARIES:
            timed(con, f"integer keys: {label}", sql, 1)
        con.execute("CREATE OR REPLACE TEMP TABLE gi AS SELECT p.k AS party_k, day_from, day_to, group_id "
                    "FROM gs JOIN pk p USING (party_id)")
        for name, keys, groups in (("string ids", STRING, "gs"), ("integer keys", INTEGER, "gi")):
            timed(con, f"reduced status, {name}", STATUS.format(year=year, groups=groups, **keys), n)
            timed(con, f"callers, {name}", CALLERS.format(**keys), n)


if __name__ == "__main__":
    main()
