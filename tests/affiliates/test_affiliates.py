"""Affiliate resolution (settlement.affiliates.groups): hand-worked P5-P8 cases, day/year graphs, explanations.

Records are written straight into affiliation_versions (the loader is tested elsewhere). Party ids are
short letters for readability; P: ids are persons (P4). Threshold 25% (P6), window 2023-05-08..2026-05-08.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from settlement.affiliates.explain import explain_relation
from settlement.affiliates.pairs import explain_pairs
from settlement.affiliates.groups import build_year_groups
from settlement.affiliates.records import RelationExplanation, pct
from tests.support.affiliates import (
    THRESHOLD,
    WINDOW,
    day_group,
    load_set,
    new_store,
    related_on,
    year_groups,
)

D = dt.date


def build(con, year: int = 2024) -> None:
    build_year_groups(con, year, equity_threshold=THRESHOLD, window_start=WINDOW[0], window_end=WINDOW[1])


def explain(con, a: str, b: str, on: dt.date | None = D(2024, 6, 1)) -> RelationExplanation:
    return explain_relation(con, a, b, on=on, equity_threshold=THRESHOLD)


@pytest.fixture()
def con(tmp_path):
    c = new_store(tmp_path)
    yield c
    c.close()


def test_percentages_print_exactly() -> None:
    assert pct(Decimal("0.3")) == "30%"
    assert pct(Decimal("0.2499000000")) == "24.99%"
    assert pct(Decimal("0.125")) == "12.5%"
    assert pct(Decimal("1")) == "100%"


def test_25_percent_direct_relates_24_99_does_not(con) -> None:
    # P6: x holds c when eff(x, c) >= 25%; with no intermediaries eff = direct.
    load_set(con, [(1, "A", "B", "equity", "0.25", None, None, False),
                   (2, "C", "D", "equity", "0.2499", None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "A", "C": "C", "D": "D"}
    assert related_on(con, "A", "B", D(2024, 6, 1))
    assert not related_on(con, "C", "D", D(2024, 6, 1))
    yes = explain(con, "A", "B")
    assert yes.related
    assert yes.text == "A and B are related on 2024-06-01 (P7): A holds 25% of B (record 1) ≥ 25% (P6)."
    assert [s.record_id for s in yes.steps] == [1]
    no = explain(con, "C", "D")
    assert not no.related
    assert no.text == (
        "C and D are not related on 2024-06-01 (P7): no chain of active, non-exempt records with holdings of "
        "at least 25% connects them. Nearest chain of records: C holds 24.99% of D (record 2): effective "
        "holding 24.99% < 25% (P6)."
    )
    assert [(s.record_id, s.verdict) for s in no.steps] == [(2, "below threshold")]


def test_pass_through_sum_is_the_policy_example(con) -> None:
    # P6 example: A holds 30% of M, M holds 10% of B, A holds 20% of B: Ctrl(A) = {M},
    # eff(A, B) = 20% + 10% = 30% >= 25%, so A holds B; all three are one group (A-M and A-B edges).
    load_set(con, [(12, "A", "M", "equity", "0.30", D(2024, 1, 1), None, False),
                   (13, "M", "B", "equity", "0.10", None, None, False),
                   (14, "A", "B", "equity", "0.20", None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "A", "M": "A"}
    e = explain(con, "A", "B")
    assert e.related
    assert e.text == (
        "A and B are related on 2024-06-01 (P7): A holds 30% of M (record 12, valid from 2024-01-01); "
        "M holds 10% of B (record 13); A holds 20% of B directly (record 14); "
        "effective holding 20% + 10% = 30% ≥ 25% (P6)."
    )
    assert [s.record_id for s in e.steps] == [12, 13, 14]
    assert all(s.verdict == "counts" for s in e.steps)


def test_pass_through_fails_when_intermediary_held_at_24_percent(con) -> None:
    # P6 example, second half: A holds 24% of M: Ctrl(A) = {}, eff(A, B) = 20% < 25%. No edge at all:
    # A-M 24%, M-B 10%, A-B 20% are all below 25%, so A, M and B are three groups.
    load_set(con, [(12, "A", "M", "equity", "0.24", None, None, False),
                   (13, "M", "B", "equity", "0.10", None, None, False),
                   (14, "A", "B", "equity", "0.20", None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "B", "M": "M"}
    e = explain(con, "A", "B")
    assert not e.related
    assert e.text.endswith("Nearest chain of records: A holds 20% of B (record 14): effective holding 20% < 25% (P6).")


# Undated equity holdings (record id, holder, held, share): the year groups and the explanation of one pair.
HOLDINGS = [
    pytest.param(
        # A -30%-> B -40%-> C -25%-> D: Ctrl(A) = {B, C, D}; eff(A, D) = direct(C, D) = 25%: A holds D.
        # Every link is itself a holding, so the explanation is the chain of three direct holdings.
        [(1, "A", "B", "0.30"), (2, "B", "C", "0.40"), (3, "C", "D", "0.25")],
        {"A": "A", "B": "A", "C": "A", "D": "A"},
        ("A", "D", "A and D are related on 2024-06-01 (P7): A holds 30% of B (record 1) ≥ 25% (P6); "
                   "B holds 40% of C (record 2) ≥ 25% (P6); C holds 25% of D (record 3) ≥ 25% (P6)."),
        id="chain-of-three-links"),
    pytest.param(
        # A person is a node too (P4, P7): P:1 holds X (60%) and Y (40%), so X and Y are related through P:1.
        [(1, "P:1", "X", "0.6"), (2, "P:1", "Y", "0.4")],
        {"P:1": "P:1", "X": "P:1", "Y": "P:1"},  # 'P' < 'X' < 'Y'
        ("X", "Y", "X and Y are related on 2024-06-01 (P7): P:1 holds 60% of X (record 1) ≥ 25% (P6); "
                   "P:1 holds 40% of Y (record 2) ≥ 25% (P6)."),
        id="person-holding-two-companies"),
    pytest.param(
        # A and B hold 30% of each other (a cycle): Ctrl(A) = {B} (A itself is excluded, P6).
        # Each holds 15% of C: eff(A, C) = 15% + 15% = 30% -> A holds C. D and E hold 20% of each other:
        # a cycle of weak links relates nobody.
        [(1, "A", "B", "0.30"), (2, "B", "A", "0.30"), (3, "A", "C", "0.15"), (4, "B", "C", "0.15"),
         (5, "D", "E", "0.20"), (6, "E", "D", "0.20")],
        {"A": "A", "B": "A", "C": "A", "D": "D", "E": "E"},
        ("A", "C", "A and C are related on 2024-06-01 (P7): A holds 30% of B (record 1); B holds 15% of C "
                   "(record 4); A holds 15% of C directly (record 3); effective holding 15% + 15% = 30% ≥ 25% (P6)."),
        id="cross-holdings-cycle"),
]


@pytest.mark.parametrize(("holdings", "groups", "explained"), HOLDINGS)
def test_equity_holdings_group_and_explain(con, holdings, groups: dict[str, str],
                                           explained: tuple[str, str, str]) -> None:
    load_set(con, [(record, a, b, "equity", share, None, None, False) for record, a, b, share in holdings])
    build(con)
    assert year_groups(con, 2024) == groups
    a, b, text = explained
    assert explain(con, a, b).text == text


def test_family_record_between_two_persons(con) -> None:
    # P5: family qualifies outright. P:1 -family- P:2; P:1 holds 50% of X, P:2 holds 50% of Y.
    load_set(con, [(1, "P:1", "P:2", "family", None, None, None, False),
                   (2, "P:1", "X", "equity", "0.5", None, None, False),
                   (3, "P:2", "Y", "equity", "0.5", None, None, False)])
    build(con)
    assert set(year_groups(con, 2024).values()) == {"P:1"}
    assert explain(con, "X", "Y").text == (
        "X and Y are related on 2024-06-01 (P7): P:1 holds 50% of X (record 2) ≥ 25% (P6); "
        "P:1 and P:2 are family (record 1); P:2 holds 50% of Y (record 3) ≥ 25% (P6)."
    )


def test_exempt_record_never_counts(con) -> None:
    # P5: exempt (e.g. state ownership) never counts, on any day nor in the year graph.
    load_set(con, [(1, "S", "A", "equity", "0.6", None, None, True),
                   (2, "S", "B", "equity", "0.6", None, None, True),
                   (3, "A", "C", "control", None, None, None, True)])
    build(con)
    assert year_groups(con, 2024) == {}  # nobody named by a counting record
    assert not related_on(con, "A", "B", D(2024, 6, 1))
    e = explain(con, "A", "C")
    assert not e.related
    assert e.text.endswith("Nearest chain of records: A controls C (record 3): exempt, does not count (P5).")
    assert e.steps[0].verdict == "exempt"


def test_record_valid_for_part_of_the_year(con) -> None:
    # P8: C controls D only from 1 Mar to 30 Jun 2024. Trade dates: related inside, not outside;
    # the year graph (distinct-caller count) has them in one group for 2024.
    load_set(con, [(1, "C", "D", "control", None, D(2024, 3, 1), D(2024, 6, 30), False)])
    build(con)
    assert year_groups(con, 2024) == {"C": "C", "D": "C"}
    assert not related_on(con, "C", "D", D(2024, 2, 29))
    assert related_on(con, "C", "D", D(2024, 3, 1))
    assert related_on(con, "C", "D", D(2024, 6, 30))
    assert not related_on(con, "C", "D", D(2024, 7, 1))
    rows = con.execute(
        "SELECT party_id, day_from, day_to, group_id FROM affiliate_day_groups WHERE year = 2024 "
        "ORDER BY party_id, day_from"
    ).fetchall()
    assert rows == [
        ("C", D(2024, 1, 1), D(2024, 12, 31), "C"),
        ("D", D(2024, 1, 1), D(2024, 2, 29), "D"),
        ("D", D(2024, 3, 1), D(2024, 6, 30), "C"),
        ("D", D(2024, 7, 1), D(2024, 12, 31), "D"),
    ]
    assert explain(con, "C", "D", D(2024, 4, 1)).text == (
        "C and D are related on 2024-04-01 (P7): C controls D (record 1, valid 2024-03-01 to 2024-06-30)."
    )
    assert explain(con, "C", "D", D(2024, 7, 1)).text.endswith(
        "Nearest chain of records: C controls D (record 1, valid 2024-03-01 to 2024-06-30): not active on "
        "2024-07-01 (P5)."
    )
    # The record is outside 2025 altogether: nobody in the 2025 graphs.
    build(con, 2025)
    assert year_groups(con, 2025) == {}


def test_dated_pass_through_changes_the_day_graph(con) -> None:
    # A holds 30% of M and 20% of B all year; M's 10% of B starts on 1 Jul 2024. Before: eff(A, B) = 20%
    # (A and M related, B alone); from 1 Jul: 20% + 10% = 30%, B joins A's group.
    load_set(con, [(1, "A", "M", "equity", "0.30", None, None, False),
                   (2, "A", "B", "equity", "0.20", None, None, False),
                   (3, "M", "B", "equity", "0.10", D(2024, 7, 1), None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "A", "M": "A"}
    assert related_on(con, "A", "M", D(2024, 1, 1))
    assert not related_on(con, "A", "B", D(2024, 6, 30))
    assert related_on(con, "A", "B", D(2024, 7, 1))
    assert related_on(con, "M", "B", D(2024, 12, 31))


def test_dated_control_link_changes_ctrl(con) -> None:
    # A holds 20% of B. A's 30% of M is dated (Apr-May 2024); M holds 10% of B all year.
    # Only in Apr-May is M in Ctrl(A), so eff(A, B) = 30% then and 20% otherwise.
    load_set(con, [(1, "A", "M", "equity", "0.30", D(2024, 4, 1), D(2024, 5, 31), False),
                   (2, "A", "B", "equity", "0.20", None, None, False),
                   (3, "M", "B", "equity", "0.10", None, None, False)])
    build(con)
    assert not related_on(con, "A", "B", D(2024, 3, 31))
    assert related_on(con, "A", "B", D(2024, 4, 1))
    assert related_on(con, "M", "B", D(2024, 5, 31))
    assert not related_on(con, "A", "B", D(2024, 6, 1))
    assert not related_on(con, "A", "M", D(2024, 6, 1))


def test_two_investors_of_one_company_are_one_group(con) -> None:
    # P7 is deliberately conservative: I1 and I2 each hold 30% of Z, so I1, I2, Z are one group.
    load_set(con, [(1, "I1", "Z", "equity", "0.3", None, None, False),
                   (2, "I2", "Z", "equity", "0.3", None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"I1": "I1", "I2": "I1", "Z": "I1"}


def test_year_graph_never_sums_records_of_different_days(con) -> None:
    # P8 (amended 2026-11-30): the year graph is the union of the day graphs' edges. A's 15% stake of
    # Jan-Mar and its 15% stake of Jul-Dec are 15% on every day: no day edge, so no year edge either.
    load_set(con, [(1, "A", "B", "equity", "0.15", D(2024, 1, 1), D(2024, 3, 31), False),
                   (2, "A", "B", "equity", "0.15", D(2024, 7, 1), D(2024, 12, 31), False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "B"}
    for on in (D(2024, 2, 1), D(2024, 5, 1), D(2024, 8, 1)):
        assert not related_on(con, "A", "B", on)


def test_year_graph_joins_edges_of_different_days(con) -> None:
    # P8: A-B exists only in March (control), B-C only in September (30% equity): no single day relates A
    # and C, but the union of the day graphs' edges has the path A-B-C, so they are one caller group.
    load_set(con, [(1, "A", "B", "control", None, D(2024, 3, 1), D(2024, 3, 31), False),
                   (2, "B", "C", "equity", "0.3", D(2024, 9, 1), D(2024, 9, 30), False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "A", "C": "A"}
    assert related_on(con, "A", "B", D(2024, 3, 15)) and not related_on(con, "A", "C", D(2024, 3, 15))
    assert related_on(con, "B", "C", D(2024, 9, 15)) and not related_on(con, "A", "C", D(2024, 9, 15))


def test_window_bounds_the_year(con) -> None:
    # P2/P3: 2023's in-scope days start on 2023-05-08. A record that ended on 2023-05-07 is in no graph
    # of 2023; the day rows of 2023 start on 2023-05-08.
    load_set(con, [(1, "A", "B", "control", None, None, D(2023, 5, 7), False),
                   (2, "C", "D", "control", None, None, None, False)])
    build(con, 2023)
    assert year_groups(con, 2023) == {"C": "C", "D": "C"}
    assert con.execute(
        "SELECT min(day_from), max(day_to) FROM affiliate_day_groups WHERE year = 2023"
    ).fetchall() == [(D(2023, 5, 8), D(2023, 12, 31))]
    # 2027 lies outside the window: nothing.
    build(con, 2027)
    assert year_groups(con, 2027) == {}


def test_rebuild_is_idempotent_and_follows_the_current_set(con) -> None:
    load_set(con, [(1, "A", "B", "control", None, None, None, False)])
    build(con)
    first = con.execute("SELECT * FROM affiliate_day_groups ORDER BY party_id").fetchall()
    build(con)
    assert con.execute("SELECT * FROM affiliate_day_groups ORDER BY party_id").fetchall() == first
    assert con.execute("SELECT count(*) FROM affiliate_groups").fetchall() == [(2,)]
    # A new set replaces the old one (CONTRACT): the groups follow it and cite its load.
    new_load = load_set(con, [(2, "A", "C", "control", None, None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "C": "A"}
    assert con.execute("SELECT DISTINCT affiliation_load_id FROM affiliate_groups").fetchall() == [(new_load,)]


def test_explain_without_date_uses_every_non_exempt_record(con) -> None:
    load_set(con, [(1, "C", "D", "control", None, D(2024, 3, 1), D(2024, 6, 30), False),
                   (2, "D", "E", "declared", None, None, None, True)])
    e = explain(con, "C", "D", None)
    assert e.related and e.on is None
    assert e.text == (
        "C and D are related when every non-exempt record counts whatever its dates (P7): "
        "C controls D (record 1, valid 2024-03-01 to 2024-06-30)."
    )
    assert not explain(con, "C", "E", None).related


def test_explain_unknown_parties(con) -> None:
    load_set(con, [(1, "A", "B", "control", None, None, None, False)])
    e = explain(con, "A", "Q")
    assert not e.related and e.steps == ()
    assert e.text.endswith("No affiliation record links them, even through other parties.")


def test_explain_pairs_related_and_not(con) -> None:
    load_set(con, [(12, "A", "M", "equity", "0.30", D(2024, 1, 1), None, False),
                   (13, "M", "B", "equity", "0.10", None, None, False),
                   (14, "A", "B", "equity", "0.20", None, None, False)])
    build(con)
    pairs = pl.DataFrame(
        {
            "a_id": ["B", "A", "B"],
            "b_id": ["A", "B", "A"],
            "on_date": [D(2024, 3, 1), D(2023, 12, 1), D(2024, 3, 1)],
        }
    )
    out = explain_pairs(con, pairs, equity_threshold=THRESHOLD)
    assert out.columns == ["a_id", "b_id", "on_date", "path"]
    assert out.height == 3
    texts = out["path"].to_list()
    assert texts[0] == texts[2] == (
        "B and A are related on 2024-03-01 (P7): A holds 30% of M (record 12, valid from 2024-01-01); "
        "M holds 10% of B (record 13); A holds 20% of B directly (record 14); "
        "effective holding 20% + 10% = 30% ≥ 25% (P6)."
    )
    # On 2023-12-01 record 12 is not yet valid: not related, explained with the nearest records.
    assert texts[1].startswith("A and B are not related on 2023-12-01 (P7)")


def test_day_groups_cover_every_in_scope_day_without_overlap(con) -> None:
    load_set(con, [(1, "A", "B", "control", None, D(2024, 2, 1), D(2024, 2, 10), False),
                   (2, "B", "C", "equity", "0.5", D(2024, 2, 5), D(2024, 3, 1), False),
                   (3, "C", "D", "family", None, None, D(2024, 2, 7), False)])
    build(con)
    rows = con.execute(
        "SELECT party_id, day_from, day_to FROM affiliate_day_groups ORDER BY party_id, day_from"
    ).fetchall()
    by_party: dict[str, list[tuple[dt.date, dt.date]]] = {}
    for party, f, t in rows:
        by_party.setdefault(party, []).append((f, t))
    assert set(by_party) == {"A", "B", "C", "D"}
    for spans in by_party.values():
        assert spans[0][0] == D(2024, 1, 1) and spans[-1][1] == D(2024, 12, 31)
        for (_, t), (f, _) in zip(spans, spans[1:]):
            assert f == t + dt.timedelta(days=1)
    # On 6 Feb all four are one group (A-B control, B-C 50%, C-D family); on 8 Feb D has left.
    assert {day_group(con, p, D(2024, 2, 6)) for p in "ABCD"} == {"A"}
    assert day_group(con, "D", D(2024, 2, 8)) == "D" and day_group(con, "C", D(2024, 2, 8)) == "A"
    assert day_group(con, "A", D(2024, 2, 11)) == "A" and day_group(con, "B", D(2024, 2, 11)) == "B"


def test_cli_explain(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from settlement.cli import app

    db = tmp_path / "cli.duckdb"
    from settlement.core import store

    store.init(db)
    c = store.open_store(db)
    load_set(c, [(12, "A", "M", "equity", "0.30", D(2024, 1, 1), None, False),
                 (13, "M", "B", "equity", "0.10", None, None, False),
                 (14, "A", "B", "equity", "0.20", None, None, False)])
    c.close()
    runner = CliRunner()
    out = runner.invoke(app, ["affiliates", "explain", "A", "B", "--on", "2024-02-01", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert out.output == (
        "A and B are related on 2024-02-01 (P7): A holds 30% of M (record 12, valid from 2024-01-01); "
        "M holds 10% of B (record 13); A holds 20% of B directly (record 14); "
        "effective holding 20% + 10% = 30% ≥ 25% (P6).\n"
    )
    out = runner.invoke(app, ["affiliates", "explain", "A", "B", "--on", "2023-12-31", "--format", "json",
                              "--db", str(db)])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["related"] is False and payload["equity_threshold"] == "0.25"
    assert [s["record_id"] for s in payload["steps"]] == [14]
    bad = runner.invoke(app, ["affiliates", "explain", "A", "B", "--on", "31/12/2024", "--db", str(db)])
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output
    outside = runner.invoke(app, ["affiliates", "explain", "A", "B", "--on", "2022-01-01", "--db", str(db)])
    assert outside.exit_code == 1 and "not in force" in outside.output


def test_build_inside_the_callers_transaction(con) -> None:
    # Settlement may call build_year_groups inside its own transaction: it must neither commit nor abort it.
    load_set(con, [(1, "A", "B", "control", None, None, None, False)])
    con.execute("BEGIN TRANSACTION")
    build(con)
    con.execute("CREATE TABLE marker AS SELECT 1 AS x")
    con.execute("ROLLBACK")
    assert con.execute("SELECT count(*) FROM affiliate_groups").fetchall() == [(0,)]
    build(con)  # autocommit: its own transaction
    assert year_groups(con, 2024) == {"A": "A", "B": "A"}


def test_pass_through_over_a_chain_of_two_links(con) -> None:
    # A -30%-> B -40%-> C: Ctrl(A) = {B, C}. C holds 10% of D and A 20%: eff(A, D) = 20% + 10% = 30%.
    # B holds nothing of D itself, so its term is absent; the chain to C is cited link by link.
    load_set(con, [(1, "A", "B", "equity", "0.30", None, None, False),
                   (2, "B", "C", "equity", "0.40", None, None, False),
                   (3, "C", "D", "equity", "0.10", None, None, False),
                   (4, "A", "D", "equity", "0.20", None, None, False)])
    build(con)
    assert year_groups(con, 2024) == {"A": "A", "B": "A", "C": "A", "D": "A"}
    assert explain(con, "D", "A").text == (
        "D and A are related on 2024-06-01 (P7): A holds 30% of B (record 1); B holds 40% of C (record 2); "
        "C holds 10% of D (record 3); A holds 20% of D directly (record 4); "
        "effective holding 20% + 10% = 30% ≥ 25% (P6)."
    )
    from settlement.affiliates.explain import affiliate_graph

    g = affiliate_graph(con, on=D(2024, 6, 1), equity_threshold=THRESHOLD)
    assert sorted(tuple(sorted(e)) for e in g.edges) == [("A", "B"), ("A", "D"), ("B", "C")]
