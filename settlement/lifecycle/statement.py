"""The statement (对账单) of one beneficiary for one year: every line from computation to payment.

ONE source for every surface: ``statement(con, year, beneficiary_id, reader=)`` reads the figures once
into a frozen ``Statement``; ``statement_document`` lays it out for `settle statement` and
`GET /v1/statements/{id}` (xlsx, PDF), and the web console's owner download (CSV, xlsx) serialises the
same ``Statement`` (``api.console.statement``). Nothing here or there computes an amount: every figure is
read from the views the lifecycle keeps (migration 0009).

Parts: the account (``beneficiary_accounts``), the account per ledger key (``key_accounts``), the ledger
entries with their state and reviewer (``entry_states``), the notice lines, the payment instructions and
their bank confirmation, the caller count and base behind each dataset amount (``current_dataset_results``)
or the volume behind a platform's (``current_platform_results``), and the trades that earn nothing counted
by P12 reason (``run_exclusion_counts`` of the run in force: for an owner, clause 6 trades of its datasets;
for a platform, its clause 7 trades). A regulator's statement also lists the integrity flags (issue 13) that name the
beneficiary, one of its datasets or its platform, with their review state; an owner's never does.
Read only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from decimal import Decimal

import duckdb

from ledgers.runchain import current_anchor
from settlement.core.errors import UserError
from settlement.explain import PlatformFigures
from settlement.integrity.flags import year_flags
from settlement.lifecycle.documents import Document, Section
from settlement.lifecycle.notice import CLAUSE_ZH

ZERO = Decimal("0.00")
READERS = ("owner", "platform", "regulator")
STATE_ZH = {"proposed": "待审核", "approved": "已审核通过", "rejected": "已退回"}
KIND_ZH = {"accrual": "核算", "adjustment": "调整", "payment": "拨付", "recovery": "追回"}
REVIEW_ZH = {"": "未复核", "cleared": "已复核：排除", "confirmed": "已复核：确认"}
REASON_ZH = {"RETRACTED": "所在上传批次已撤回", "OUT_OF_WINDOW": "交易日期不在政策有效期内",
             "NOT_CERTIFIED": "交易日数据集未经认定", "PLATFORM_NOT_CERTIFIED": "交易日平台未经认定",
             "RELATED_PARTY": "关联交易（附关联路径）", "FULLY_REFUNDED": "已全额退款",
             "BELOW_CALLER_THRESHOLD": "非关联调用企业未超过3家"}
ACCOUNT_ZH = (("entitled", "核算应得"), ("proposed", "待审核"), ("approved", "已审核通过"), ("noticed", "已公示"),
              ("disbursed", "已拨付（含追回）"), ("paid", "已到账"), ("outstanding", "待拨付"))
ACCOUNT_FIELDS = tuple(k for k, _ in ACCOUNT_ZH)


@dataclass(frozen=True)
class KeyLine:
    """The account of one ledger key (clause, dataset) of the beneficiary: a ``key_accounts`` row."""
    clause: int
    dataset_id: str
    entitled: Decimal
    proposed: Decimal
    approved: Decimal
    noticed: Decimal
    disbursed: Decimal
    paid: Decimal
    outstanding: Decimal
    held: bool


@dataclass(frozen=True)
class DatasetLine:
    """Clause 6 behind one dataset of an owner (results in force; zeros when it has none) and its key."""
    dataset_id: str
    name: str
    caller_groups: int
    caller_threshold: int | None
    qualifies: bool
    eligible_sales: int
    base: Decimal
    rate: Decimal | None
    gross: Decimal
    prior_awards: Decimal
    payable: Decimal  # this owner's share before the cap (P10.6)
    capped: bool
    target: Decimal  # the key's target after the cap split (P10.7)
    excluded_trades: int
    entitled: Decimal  # Σ entries of the key, runs not rejected (settle payouts)
    paid: Decimal  # Σ instructions of confirmed batches


@dataclass(frozen=True)
class FlagLine:
    flag_id: int
    code: str
    dataset_id: str
    platform_id: str
    review: str  # '' (unreviewed), cleared or confirmed: the latest review of the flag's key
    reviewed_by: str


@dataclass(frozen=True)
class Statement:
    year: int
    beneficiary_id: str
    reader: str
    run_id: int | None  # the run in force for the year (current_runs)
    anchor: str
    account: dict[str, Decimal]
    keys: tuple[KeyLine, ...]
    entries: tuple[tuple, ...]  # run_id, date, clause, dataset_id, amount, kind, state, reviewed_by
    notices: tuple[tuple, ...]  # ref, on_date, until_date, clause, dataset_id, amount
    payments: tuple[tuple, ...]  # batch, on_date, clause, dataset_id, amount, kind, paid_on
    datasets: tuple[DatasetLine, ...]
    platform: tuple[PlatformFigures, ...]  # clause 7 behind a platform's amount (results in force)
    exclusions: tuple[tuple[int, str, int], ...]  # clause, reason, trades
    flags: tuple[FlagLine, ...] | None  # None: not shown to this reader

    @property
    def known(self) -> bool:
        return bool(self.keys or self.datasets or self.platform)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params) -> tuple[tuple, ...]:
    return tuple(tuple(r) for r in con.execute(sql, params).fetchall())


def account(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str) -> dict[str, Decimal]:
    rows = con.execute(f"SELECT {', '.join(ACCOUNT_FIELDS)} FROM beneficiary_accounts "
                       "WHERE year = ? AND beneficiary_id = ?", [year, beneficiary_id]).fetchall()
    return dict(zip(ACCOUNT_FIELDS, rows[0] if rows else (ZERO,) * len(ACCOUNT_FIELDS)))


# The owner's datasets of the year: owned in the registry in a period overlapping it (P10.1), or with
# results or a ledger key of the owner in it. Each with its results in force (zeros without) and its key.
MINE_SQL = """
    SELECT dataset_id FROM datasets WHERE owner_id = $b
       AND coalesce(owner_from, DATE '0001-01-01') <= make_date($y, 12, 31)
       AND coalesce(owner_until, DATE '9999-12-31') >= make_date($y, 1, 1)
    UNION SELECT dataset_id FROM current_dataset_results WHERE year = $y AND owner_id = $b
    UNION SELECT dataset_id FROM key_accounts WHERE year = $y AND clause = 6 AND beneficiary_id = $b"""
DATASETS_SQL = f"""
WITH mine AS ({MINE_SQL}),
names AS (SELECT dataset_id, first(name ORDER BY owner_id = $b DESC, owner_from DESC NULLS LAST) AS name
          FROM datasets GROUP BY dataset_id)  -- the name in the owner's period, as the notice names it
SELECT m.dataset_id, coalesce(names.name, ''), coalesce(r.caller_groups, 0),
       coalesce(r.caller_threshold, (SELECT max(caller_threshold) FROM current_dataset_results WHERE year = $y)),
       coalesce(r.qualifies, false), coalesce(r.eligible_sales, 0), coalesce(r.base, 0), r.rate,
       coalesce(r.gross, 0), coalesce(r.prior_awards, 0), coalesce(r.payable, 0), coalesce(r.capped, false),
       coalesce(r.target, 0), 0, coalesce(k.entitled, 0), coalesce(k.paid, 0)
FROM mine m
LEFT JOIN current_dataset_results r ON r.year = $y AND r.owner_id = $b AND r.dataset_id = m.dataset_id
LEFT JOIN key_accounts k ON k.year = $y AND k.clause = 6 AND k.beneficiary_id = $b AND k.dataset_id = m.dataset_id
LEFT JOIN names ON names.dataset_id = m.dataset_id
ORDER BY m.dataset_id"""
# the run's exclusion counts (run_exclusion_counts, migration 0013; deriving the view would cost a whole
# re-derivation of the run): trades per clause, dataset and reason
EXCLUSIONS_SQL = f"""
SELECT x.clause, CASE WHEN x.clause = 6 THEN x.dataset_id ELSE '' END, x.reason, sum(x.trades)
FROM current_runs c JOIN run_exclusion_counts x ON x.run_id = c.source_run_id AND x.year = c.year
WHERE x.year = $y AND ((x.clause = 7 AND x.platform_id = $b) OR (x.clause = 6 AND x.dataset_id IN ({MINE_SQL})))
GROUP BY ALL ORDER BY ALL"""


def _money(row: tuple, *amounts: int) -> tuple:
    """DECIMAL(18,2) from the views; the sums' zero defaults carry two decimals too."""
    return tuple(Decimal(v).quantize(ZERO) if i in amounts and v is not None else v for i, v in enumerate(row))


def _flags(con: duckdb.DuckDBPyConnection, year: int, b: str, datasets: set[str]) -> tuple[FlagLine, ...]:
    try:
        found = year_flags(con, year)
    except UserError:  # no run of the year: no flag either
        return ()
    return tuple(FlagLine(f.flag_id, f.code, f.dataset_id or "", f.platform_id or "", f.review or "",
                          f.reviewed_by or "")
                 for f in found if f.dataset_id in datasets or f.platform_id == b or b in f.parties)


def statement(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str, *,
              reader: str = "regulator") -> Statement:
    """Every figure of ``beneficiary_id``'s statement of ``year`` as ``reader`` (owner, platform or
    regulator) may see it: the same figures for all, integrity flags for a regulator only."""
    if reader not in READERS:
        raise ValueError(f"reader {reader!r}: one of {READERS}")
    b, p = beneficiary_id, dict(y=year, b=beneficiary_id)
    keys = tuple(KeyLine(*_money(r, *range(2, 9))) for r in _rows(
        con, "SELECT clause, dataset_id, entitled, proposed, approved, noticed, disbursed, paid, outstanding, held "
             "FROM key_accounts WHERE year = $y AND beneficiary_id = $b ORDER BY clause, dataset_id", p))
    entries = _rows(con, "SELECT run_id, CAST(CAST(created_at AS DATE) AS VARCHAR), clause, dataset_id, amount, kind, "
                         "state, coalesce(reviewed_by, '') FROM entry_states WHERE year = $y AND beneficiary_id = $b "
                         "ORDER BY entry_id", p)
    notices = _rows(con, "SELECT ref, CAST(on_date AS VARCHAR), CAST(until_date AS VARCHAR), clause, dataset_id, "
                         "amount FROM lifecycle_events WHERE kind = 'notice' AND year = $y AND beneficiary_id = $b "
                         "ORDER BY event_id", p)
    payments = _rows(con, "SELECT d.ref, CAST(d.on_date AS VARCHAR), d.clause, d.dataset_id, d.amount, d.note, "
                          "coalesce(CAST((SELECT min(q.on_date) FROM lifecycle_events q WHERE q.kind = 'paid' "
                          "AND q.ref = d.ref) AS VARCHAR), '') FROM lifecycle_events d WHERE d.kind = 'disburse' "
                          "AND d.year = $y AND d.beneficiary_id = $b ORDER BY d.event_id", p)
    excluded = _rows(con, EXCLUSIONS_SQL, p)
    per_dataset = Counter()
    per_reason = Counter()
    for clause, dataset_id, reason, n in excluded:  # a few aggregated rows, not trades
        per_dataset[dataset_id] += int(n) if clause == 6 else 0
        per_reason[(clause, reason)] += int(n)
    datasets = tuple(replace(DatasetLine(*_money(r, 6, 8, 9, 10, 12, 14, 15)), excluded_trades=per_dataset[r[0]])
                     for r in _rows(con, DATASETS_SQL, p))
    platform = tuple(PlatformFigures(*r) for r in _rows(
        con, "SELECT eligible_sales, volume, rate, subsidy_uncapped, cap, target FROM current_platform_results "
             "WHERE year = $y AND platform_id = $b", p))
    run = con.execute("SELECT max(run_id) FROM current_runs WHERE year = ?", [year]).fetchall()[0][0]
    flags = _flags(con, year, b, {d.dataset_id for d in datasets}) if reader == "regulator" else None
    return Statement(year, b, reader, run, current_anchor(con), account(con, year, b), keys, entries, notices,
                     payments, datasets, platform, tuple((c, r, n) for (c, r), n in sorted(per_reason.items())), flags)


def _sections(st: Statement) -> tuple[Section, ...]:
    names = {d.dataset_id: d.name for d in st.datasets}
    summary = Section("账户汇总", tuple(label for _, label in ACCOUNT_ZH), (tuple(st.account[k] for k in ACCOUNT_FIELDS),))
    keys = Section("分项账户（每个台账科目）", ("条款", "数据集编号", "数据集名称", *(label for _, label in ACCOUNT_ZH),
                                     "异议暂缓"),
                   tuple((CLAUSE_ZH[k.clause], k.dataset_id, names.get(k.dataset_id, ""),
                          *(getattr(k, f) for f in ACCOUNT_FIELDS), "是" if k.held else "") for k in st.keys))
    ledger = Section("台账明细（核算批次）", ("核算批次", "日期", "条款", "数据集编号", "金额（元）", "类型", "状态", "审核人"),
                     tuple((r[0], r[1], CLAUSE_ZH[r[2]], r[3], r[4], KIND_ZH[r[5]], STATE_ZH[r[6]], r[7])
                           for r in st.entries))
    notices = Section("公示", ("公示编号", "公示日期", "可拨付日期", "条款", "数据集编号", "金额（元）"),
                      tuple((r[0], r[1], r[2], CLAUSE_ZH[r[3]], r[4], r[5]) for r in st.notices))
    payments = Section("拨付与追回", ("拨付批次", "指令日期", "条款", "数据集编号", "金额（元）", "类型", "到账日期"),
                       tuple((r[0], r[1], CLAUSE_ZH[r[2]], r[3], r[4], KIND_ZH[r[5]], r[6]) for r in st.payments))
    return summary, keys, ledger, notices, payments


def _basis_sections(st: Statement) -> tuple[Section, ...]:
    datasets = Section(
        "核算依据：第六条（现行核算结果）",
        ("数据集编号", "数据集名称", "非关联调用企业数", "门槛（须超过）", "合格销售笔数", "基数（元）", "比例",
         "奖励（元）", "已获资助（元）", "应付（封顶前，元）", "封顶分摊", "核定金额（元）", "不计入笔数"),
        tuple((d.dataset_id, d.name, d.caller_groups, d.caller_threshold, d.eligible_sales, d.base, d.rate, d.gross,
               d.prior_awards, d.payable, "是" if d.capped else "否", d.target, d.excluded_trades) for d in st.datasets))
    platform = Section("核算依据：第七条（现行核算结果）",
                       ("合格销售笔数", "交易额（元）", "比例", "补贴（封顶前，元）", "封顶（元）", "核定金额（元）"),
                       tuple((x.eligible_sales, x.volume, x.rate, x.subsidy_uncapped, x.cap, x.target)
                             for x in st.platform))
    excluded = Section("不计入交易（按原因计数）", ("条款", "原因代码", "原因", "笔数"),
                       tuple((CLAUSE_ZH[c], r, REASON_ZH.get(r, r), n) for c, r, n in st.exclusions))
    out = (datasets, platform, excluded)
    if st.flags is not None:  # regulators only (issue 13): flags never change an amount
        out += (Section("诚信标记（仅监管方可见，不改变金额）", ("标记编号", "代码", "数据集编号", "平台编号", "复核状态", "复核人"),
                        tuple((f.flag_id, f.code, f.dataset_id, f.platform_id, REVIEW_ZH.get(f.review, f.review),
                               f.reviewed_by) for f in st.flags)),)
    return out


def render(st: Statement) -> Document:
    """The statement laid out as a ``Document`` (zh-CN headers) for xlsx and PDF."""
    return Document(
        title=f"对账单 {st.year}年度 {st.beneficiary_id}",
        lines=(f"企业代码：{st.beneficiary_id}", "核算应得 = 待审核 + 已审核通过；已审核通过 = 已拨付 + 待拨付",
               f"账本锚点：{st.anchor}"),
        sections=_sections(st) + _basis_sections(st),
    )


def statement_document(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str, *,
                       reader: str = "regulator") -> Document:
    """The statement of ``beneficiary_id`` for ``year``; ``UserError`` when it has no line in that year.
    The CLI and the API serve it to the bureau, hence the regulator's reader by default."""
    st = statement(con, year, beneficiary_id, reader=reader)
    if not st.known:
        raise UserError(f"no account of {beneficiary_id} in {year}", code="not_found")
    return render(st)
