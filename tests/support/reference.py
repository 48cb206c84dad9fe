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


def groups_of(records: list[Rec], threshold: Decimal) -> dict[str, str]:
    """P6 + P7 on a set of active records: party -> group representative (parties with an edge only)."""
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
        return groups_of([r for r in self.records if active_in(r, first, last)], self.threshold)


@dataclass(frozen=True)
class Expected:
    targets: dict[tuple[int, str, str], Decimal]  # (clause, beneficiary, dataset or '') -> non-zero amount
    reasons6: dict[tuple[str, str, int], str]  # sale (platform, trade_id, upload_id) -> P12 code, clause 6
    reasons7: dict[tuple[str, str, int], str]


def reference(con, year: int, *, window: tuple[date, date], c6_rate=Decimal("0.10"), threshold=3,
              c6_cap=Decimal("1000000.00"), c7_rate=Decimal("0.01"), c7_cap=Decimal("1000000.00"),
              equity_threshold=Decimal("0.25")) -> Expected:
    trades = con.execute(
        "SELECT trade_id, platform_id, dataset_id, seller_id, buyer_id, local_date, amount, kind, ref_trade_id, "
        "upload_id, retracted FROM trades"
    ).fetchall()
    datasets = {r[0]: r[1:] for r in con.execute(
        "SELECT dataset_id, owner_id, certified_on, certified_until FROM datasets").fetchall()}
    platforms = {r[0]: r[1:] for r in con.execute(
        "SELECT platform_id, certified_on, certified_until FROM platforms").fetchall()}
    prior: dict[str, Decimal] = defaultdict(Decimal)
    for ds, amt in con.execute("SELECT dataset_id, amount FROM prior_awards WHERE year = ?", [year]).fetchall():
        prior[ds] += amt
    rel = Relations(read_records(con), equity_threshold)

    def certified(reg, d):
        return reg is not None and (reg[-2] is None or reg[-2] <= d) and (reg[-1] is None or d <= reg[-1])

    refunded: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for t in trades:
        if t[7] == "refund" and not t[10]:
            refunded[(t[1], t[8])] += t[6]
    first, last = max(window[0], date(year, 1, 1)), min(window[1], date(year, 12, 31))
    ygroups = rel.year_groups(first, last) if first <= last else {}
    r6: dict = {}
    r7: dict = {}
    eligible6: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    volume: dict[str, Decimal] = defaultdict(Decimal)
    for (tid, pf, ds, seller, buyer, d, amount, kind, _ref, up, retracted) in trades:
        if kind != "sale" or d.year != year:
            continue
        key = (pf, tid, up)
        net = amount - (Decimal(0) if retracted else refunded[(pf, tid)])
        in_scope = window[0] <= d <= window[1]
        reg = datasets.get(ds)
        owner = reg[0] if reg else None
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
            eligible6[ds].append((buyer, net, key))
        if not certified(platforms.get(pf), d):
            r7[key] = "PLATFORM_NOT_CERTIFIED"
        elif rel.related(buyer, seller, d) or rel.related(pf, buyer, d) or rel.related(pf, seller, d):
            r7[key] = "RELATED_PARTY"
        elif net <= 0:
            r7[key] = "FULLY_REFUNDED"
        else:
            volume[pf] += net
    targets: dict[tuple[int, str, str], Decimal] = {}
    payable: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for ds in set(eligible6) | set(prior):
        sales = eligible6.get(ds, [])
        by_group: dict[str, Decimal] = defaultdict(Decimal)
        for buyer, net, _k in sales:
            by_group[ygroups.get(buyer, "own:" + buyer)] += net
        callers = sum(1 for s in by_group.values() if s > 0)  # P10.3
        base = sum((net for _b, net, _k in sales), Decimal(0))
        qualifies = callers > threshold  # P10.4
        if not qualifies:
            for _b, _n, k in sales:
                r6[k] = "BELOW_CALLER_THRESHOLD"
        gross = r2(c6_rate * base) if qualifies else Decimal("0.00")
        owner = datasets[ds][0] if ds in datasets else None
        if owner is not None:
            payable[owner][ds] = max(Decimal("0.00"), gross - prior.get(ds, Decimal(0)))  # P10.6
    for owner, per in payable.items():  # P10.7, cents by hand
        total = sum(per.values())
        if total > c6_cap:
            cap_c, tot_c = int(c6_cap * 100), int(total * 100)
            fl = {k: (cap_c * int(v * 100)) // tot_c for k, v in per.items()}
            rem = {k: (cap_c * int(v * 100)) % tot_c for k, v in per.items()}
            left = cap_c - sum(fl.values())
            for k in sorted(per, key=lambda k: (-rem[k], k))[:left]:
                fl[k] += 1
            per = {k: Decimal(c) / 100 for k, c in fl.items()}
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
