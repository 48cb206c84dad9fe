"""The statement (对账单) of one beneficiary for one year: every line from computation to payment.

Sections: the account (entitled, proposed, approved, noticed, disbursed, paid, outstanding: the
``beneficiary_accounts`` view), the ledger entries with their state and reviewer, the notice lines, the
payment instructions and their bank confirmation, the caller count and base behind each dataset amount
(``current_dataset_results``) or the volume behind a platform's (``current_platform_results``), and the
trades that earn nothing counted by P12 reason (``current_exclusions``: for an owner, clause 6 trades of
datasets it owned in the registry; for a platform, its clause 7 trades). Read only.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb

from ledgers.runchain import current_anchor
from settlement.core.errors import UserError
from settlement.lifecycle.documents import Document, Section
from settlement.lifecycle.notice import CLAUSE_ZH

ZERO = Decimal("0.00")
STATE_ZH = {"proposed": "待审核", "approved": "已审核通过", "rejected": "已退回"}
KIND_ZH = {"accrual": "核算", "adjustment": "调整", "payment": "拨付", "recovery": "追回"}
REASON_ZH = {"RETRACTED": "所在上传批次已撤回", "OUT_OF_WINDOW": "交易日期不在政策有效期内",
             "NOT_CERTIFIED": "交易日数据集未经认定", "PLATFORM_NOT_CERTIFIED": "交易日平台未经认定",
             "RELATED_PARTY": "关联交易（附关联路径）", "FULLY_REFUNDED": "已全额退款",
             "BELOW_CALLER_THRESHOLD": "非关联调用企业未超过3家"}
ACCOUNT_ZH = (("entitled", "核算应得"), ("proposed", "待审核"), ("approved", "已审核通过"), ("noticed", "已公示"),
              ("disbursed", "已拨付（含追回）"), ("paid", "已到账"), ("outstanding", "待拨付"))


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> tuple[tuple, ...]:
    return tuple(tuple(r) for r in con.execute(sql, params).fetchall())


def account(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str) -> dict[str, Decimal]:
    rows = con.execute(f"SELECT {', '.join(k for k, _ in ACCOUNT_ZH)} FROM beneficiary_accounts "
                       "WHERE year = ? AND beneficiary_id = ?", [year, beneficiary_id]).fetchall()
    return dict(zip((k for k, _ in ACCOUNT_ZH), rows[0] if rows else (ZERO,) * len(ACCOUNT_ZH)))


def _ledger_section(con, year: int, b: str) -> Section:
    rows = _rows(con, "SELECT run_id, CAST(created_at AS DATE), clause, dataset_id, amount, kind, state, "
                      "coalesce(reviewed_by, '') FROM entry_states WHERE year = ? AND beneficiary_id = ? "
                      "ORDER BY entry_id", [year, b])
    rows = tuple((r[0], str(r[1]), CLAUSE_ZH[r[2]], r[3], r[4], KIND_ZH[r[5]], STATE_ZH[r[6]], r[7]) for r in rows)
    return Section("台账明细（核算批次）", ("核算批次", "日期", "条款", "数据集编号", "金额（元）", "类型", "状态", "审核人"), rows)


def _notice_section(con, year: int, b: str) -> Section:
    rows = _rows(con, "SELECT ref, on_date, until_date, clause, dataset_id, amount FROM lifecycle_events "
                      "WHERE kind = 'notice' AND year = ? AND beneficiary_id = ? ORDER BY event_id", [year, b])
    rows = tuple((r[0], str(r[1]), str(r[2]), CLAUSE_ZH[r[3]], r[4], r[5]) for r in rows)
    return Section("公示", ("公示编号", "公示日期", "可拨付日期", "条款", "数据集编号", "金额（元）"), rows)


def _disbursement_section(con, year: int, b: str) -> Section:
    rows = _rows(con, "SELECT d.ref, d.on_date, d.clause, d.dataset_id, d.amount, d.note, "
                      "(SELECT min(p.on_date) FROM lifecycle_events p WHERE p.kind = 'paid' AND p.ref = d.ref) "
                      "FROM lifecycle_events d WHERE d.kind = 'disburse' AND d.year = ? AND d.beneficiary_id = ? "
                      "ORDER BY d.event_id", [year, b])
    rows = tuple((r[0], str(r[1]), CLAUSE_ZH[r[2]], r[3], r[4], KIND_ZH[r[5]], "" if r[6] is None else str(r[6]))
                 for r in rows)
    return Section("拨付与追回", ("拨付批次", "指令日期", "条款", "数据集编号", "金额（元）", "类型", "到账日期"), rows)


def _basis_section(con, year: int, b: str) -> Section:
    datasets = _rows(con, "SELECT dataset_id, caller_groups, caller_threshold, eligible_sales, base, gross, "
                          "prior_awards, target FROM current_dataset_results WHERE year = ? AND owner_id = ? "
                          "ORDER BY dataset_id", [year, b])
    platforms = _rows(con, "SELECT '', NULL, NULL, eligible_sales, volume, subsidy_uncapped, NULL, target "
                           "FROM current_platform_results WHERE year = ? AND platform_id = ?", [year, b])
    return Section("核算依据（现行核算结果）",
                   ("数据集编号", "非关联调用企业数", "门槛（须超过）", "合格销售笔数", "基数/交易额（元）",
                    "奖励/补贴（元）", "已获资助（元）", "核定金额（元）"), datasets + platforms)


def _exclusions_section(con, year: int, b: str) -> Section:
    rows = _rows(con, """
        SELECT clause, reason, count(*) FROM current_exclusions x
        WHERE x.year = ? AND ((x.clause = 7 AND x.platform_id = ?)
           OR (x.clause = 6 AND x.dataset_id IN (SELECT dataset_id FROM dataset_versions WHERE owner_id = ?)))
        GROUP BY clause, reason ORDER BY clause, reason""", [year, b, b])
    rows = tuple((CLAUSE_ZH[c], r, REASON_ZH.get(r, r), n) for c, r, n in rows)
    return Section("不计入交易（按原因计数）", ("条款", "原因代码", "原因", "笔数"), rows)


def statement_document(con: duckdb.DuckDBPyConnection, year: int, beneficiary_id: str) -> Document:
    """The statement of ``beneficiary_id`` for ``year``; ``UserError`` when it has no line in that year."""
    known = con.execute("SELECT count(*) FROM key_accounts WHERE year = ? AND beneficiary_id = ?",
                        [year, beneficiary_id]).fetchall()[0][0]
    if not known:
        raise UserError(f"no account of {beneficiary_id} in {year}", code="not_found")
    acc = account(con, year, beneficiary_id)
    summary = Section("账户汇总", tuple(label for _, label in ACCOUNT_ZH), (tuple(acc[k] for k, _ in ACCOUNT_ZH),))
    return Document(
        title=f"对账单 {year}年度 {beneficiary_id}",
        lines=(f"企业代码：{beneficiary_id}", "核算应得 = 待审核 + 已审核通过；已审核通过 = 已拨付 + 待拨付",
               f"账本锚点：{current_anchor(con)}"),
        sections=(summary, _ledger_section(con, year, beneficiary_id), _notice_section(con, year, beneficiary_id),
                  _disbursement_section(con, year, beneficiary_id), _basis_section(con, year, beneficiary_id),
                  _exclusions_section(con, year, beneficiary_id)),
    )
