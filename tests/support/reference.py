"""An independent, deliberately simple Python reference of P5–P12 for SMALL data (tests only).

Reads the stored inputs with plain SELECTs and recomputes, with loops and dicts, the target payable per
ledger key and the P12 reason of every sale, straight from the wording of POLICY.md. It shares no code
with ``settlement.clauses.targets`` / ``settlement.affiliates.groups`` (only the money helpers' rounding rule is
re-stated here with ``decimal``), so agreement between the two is evidence, not tautology.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def r2(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)  # P1: once, half-up


@dataclass(frozen=True)
class Rec:
    record_id: int
    a: str
    b: str
    relation: str
    share: Decimal | None
    valid_from: date | None
    valid_to: date | None
    exempt: bool


def read_records(con) -> list[Rec]:
    rows = con.execute(
        "SELECT record_id, a_id, b_id, relation, share, valid_from, valid_to, exempt FROM affiliations"
    ).fetchall()
    return [Rec(*r) for r in rows]


def active_on(rec: Rec, d: date) -> bool:
    """P5: valid_from ≤ d ≤ valid_to (empty = open) and not exempt."""
    return (not rec.exempt) and (rec.valid_from is None or rec.valid_from <= d) and (
        rec.valid_to is None or d <= rec.valid_to
    )


def active_in(rec: Rec, first: date, last: date) -> bool:
    """Active on at least one day of [first, last] (P8 year graph)."""
    return (not rec.exempt) and (rec.valid_from is None or rec.valid_from <= last) and (
        rec.valid_to is None or first <= rec.valid_to
    )


def edges_of(records: list[Rec], threshold: Decimal) -> list[tuple[str, str]]:
    """P6 + P7 on a set of active records: the edges of the affiliate graph."""
    direct: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    parties: set[str] = set()
    edges: list[tuple[str, str]] = []
    for r in records:
        parties.update((r.a, r.b))
        if r.relation == "equity":
            direct[(r.a, r.b)] += r.share
        else:
            edges.append((r.a, r.b))  # control, management, family, declared qualify outright (P5)
    pass_through = Decimal("0.25")
    # P6 pass-through steps use 25 % (the tax rule); the holding threshold is the dated parameter.
    steps: dict[str, list[str]] = defaultdict(list)
    for (y, c), s in direct.items():
        if s >= pass_through:
            steps[y].append(c)
    for x in parties:
        ctrl: set[str] = set()
        todo = [x]
        while todo:
            y = todo.pop()
            for c in steps[y]:
                if c != x and c not in ctrl:
                    ctrl.add(c)
                    todo.append(c)
        eff: dict[str, Decimal] = defaultdict(Decimal)
        for (y, c), s in direct.items():
            if (y == x or y in ctrl) and y != c:
                eff[c] += s
        for c, s in eff.items():
            if c != x and s >= threshold:
                edges.append((x, c))
    return edges


def components_of(edges) -> dict[str, str]:
    """Union-find: party -> smallest party of its component (parties with an edge only)."""
    parent: dict[str, str] = {}

    def find(p: str) -> str:
        parent.setdefault(p, p)
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {p: find(p) for p in list(parent)}


def groups_of(records: list[Rec], threshold: Decimal) -> dict[str, str]:
    """P7 groups of one set of active records (a day graph)."""
    return components_of(edges_of(records, threshold))


class Relations:
    """related(x, y, d) per the trade-date graph (P8), cached per date; year groups per year."""

    def __init__(self, records: list[Rec], threshold: Decimal):
        self.records, self.threshold = records, threshold
        self._days: dict[date, dict[str, str]] = {}

    def related(self, x: str, y: str, d: date) -> bool:
        if x == y:
            return True  # an enterprise is never "non-affiliated" with itself
        if d not in self._days:
            self._days[d] = groups_of([r for r in self.records if active_on(r, d)], self.threshold)
        g = self._days[d]
        return x in g and y in g and g[x] == g[y]

    def year_groups(self, first: date, last: date) -> dict[str, str]:
        """P8 (amended): the union of the day graphs' edges over every in-scope day, then components."""
        edges: set[tuple[str, str]] = set()
        for d in days(first, last):
            edges.update(edges_of([r for r in self.records if active_on(r, d)], self.threshold))
        return components_of(sorted(edges))


@dataclass(frozen=True)
class Expected:
    targets: dict[tuple[int, str, str], Decimal]  # (clause, beneficiary, dataset or '') -> non-zero amount
    reasons6: dict[tuple[str, str, int], str]  # sale (platform, trade_id, upload_id) -> P12 code, clause 6
    reasons7: dict[tuple[str, str, int], str]


def split_cents(total: Decimal, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    """``total`` shared in proportion to ``weights``: floors to the cent, leftover cents one each to the
    largest remainders, ties by key in code-point order (P10.1 owner shares, P10.7 cap shares)."""
    tot_c, w_c = int(total * 100), {k: int(v * 100) for k, v in weights.items()}
    whole = sum(w_c.values())
    if whole == 0:
        return {k: Decimal("0.00") for k in weights}
    fl = {k: (tot_c * c) // whole for k, c in w_c.items()}
    rem = {k: (tot_c * c) % whole for k, c in w_c.items()}
    for k in sorted(w_c, key=lambda k: (-rem[k], k))[:tot_c - sum(fl.values())]:
        fl[k] += 1
    return {k: (Decimal(c) / 100).quantize(CENT) for k, c in fl.items()}


def reference(con, year: int, *, window: tuple[date, date], c6_rate=Decimal("0.10"), threshold=3,
              c6_cap=Decimal("1000000.00"), c7_rate=Decimal("0.01"), c7_cap=Decimal("1000000.00"),
              equity_threshold=Decimal("0.25")) -> Expected:
    trades = con.execute(
        "SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, local_date, amount, kind, ref_trade_id, "
        "upload_id, retracted FROM trades"
    ).fetchall()
    # P10.1 (amended): registration periods per dataset, each from its owner_from (None = open start)
    periods: dict[str, list[tuple]] = defaultdict(list)
    for ds, owner_from, owner, c_on, c_until in con.execute(
            "SELECT dataset_id, owner_from, owner_id, certified_on, certified_until FROM datasets").fetchall():
        periods[ds].append((owner_from, owner, c_on, c_until))
    for rows in periods.values():
        rows.sort(key=lambda r: (r[0] is not None, r[0]))

    def period_on(ds: str, d: date):
        found = None
        for row in periods.get(ds, []):
            if row[0] is None or row[0] <= d:
                found = row
        return found  # None: no owner on that date (NOT_CERTIFIED)

    platforms = {r[0]: r[1:] for r in con.execute(
        "SELECT platform_id, certified_on, certified_until FROM platforms").fetchall()}
    prior: dict[str, Decimal] = defaultdict(Decimal)
    for ds, amt in con.execute("SELECT dataset_id, amount FROM prior_awards WHERE year = ?", [year]).fetchall():
        prior[ds] += amt
    rel = Relations(read_records(con), equity_threshold)

    def certified(reg, d):  # P10.1 / P11.1 amended: empty certified_on = never certified
        return reg is not None and reg[-2] is not None and reg[-2] <= d and (reg[-1] is None or d <= reg[-1])

    refunded: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for t in trades:
        if t[7] == "refund" and not t[10]:
            refunded[(t[1], t[8])] += t[6]
    first, last = max(window[0], date(year, 1, 1)), min(window[1], date(year, 12, 31))
    ygroups = rel.year_groups(first, last) if first <= last else {}
    r6: dict = {}
    r7: dict = {}
    eligible6: dict[tuple[str, str], list] = defaultdict(list)  # (dataset, owner on the sale date) -> sales
    volume: dict[str, Decimal] = defaultdict(Decimal)
    for (tid, pf, ds, seller, buyer, d, amount, kind, _ref, up, retracted) in trades:
        if kind != "sale" or d.year != year:
            continue
        key = (pf, tid, up)
        net = amount - (Decimal(0) if retracted else refunded[(pf, tid)])
        in_scope = window[0] <= d <= window[1]
        reg = period_on(ds, d)
        owner = reg[1] if reg else None
        # P10.2 / P12 order
        if retracted:
            r6[key] = r7[key] = "RETRACTED"
            continue
        if not in_scope:
            r6[key] = r7[key] = "OUT_OF_WINDOW"
            continue
        if not certified(reg, d):
            r6[key] = "NOT_CERTIFIED"
        elif rel.related(buyer, owner, d):
            r6[key] = "RELATED_PARTY"
        elif net <= 0:
            r6[key] = "FULLY_REFUNDED"
        else:
            eligible6[(ds, owner)].append((buyer, net, key))
        if not certified(platforms.get(pf), d):
            r7[key] = "PLATFORM_NOT_CERTIFIED"
        elif rel.related(buyer, seller, d) or rel.related(pf, buyer, d) or rel.related(pf, seller, d):
            r7[key] = "RELATED_PARTY"
        elif net <= 0:
            r7[key] = "FULLY_REFUNDED"
        else:
            volume[pf] += net
    targets: dict[tuple[int, str, str], Decimal] = {}
    gross: dict[str, dict[str, Decimal]] = defaultdict(dict)  # dataset -> owner -> gross
    for (ds, owner), sales in eligible6.items():
        by_group: dict[str, Decimal] = defaultdict(Decimal)
        for buyer, net, _k in sales:
            by_group[ygroups.get(buyer, "own:" + buyer)] += net
        callers = sum(1 for s in by_group.values() if s > 0)  # P10.3
        base = sum((net for _b, net, _k in sales), Decimal(0))
        if callers > threshold:  # P10.4
            gross[ds][owner] = r2(c6_rate * base)  # P10.5
        else:
            for _b, _n, k in sales:
                r6[k] = "BELOW_CALLER_THRESHOLD"
    payable: dict[str, dict[str, Decimal]] = defaultdict(dict)  # owner -> dataset -> payable
    for ds, per_owner in gross.items():  # P10.1 + P10.6: dataset payable shared among owners by gross
        total = sum(per_owner.values(), Decimal(0))
        dataset_payable = max(Decimal("0.00"), total - prior.get(ds, Decimal(0)))
        shares = per_owner if dataset_payable == total else split_cents(dataset_payable, per_owner)
        for owner, amt in shares.items():
            payable[owner][ds] = amt
    for owner, per in payable.items():  # P10.7
        if sum(per.values()) > c6_cap:
            per = split_cents(c6_cap, per)
        for ds, amt in per.items():
            if amt != 0:
                targets[(6, owner, ds)] = amt.quantize(CENT)
    for pf, vol in volume.items():  # P11.3
        amt = min(r2(c7_rate * vol), c7_cap)
        if amt != 0:
            targets[(7, pf, "")] = amt
    return Expected(targets, r6, r7)


def days(first: date, last: date):
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)
