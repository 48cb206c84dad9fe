"""The public notice (公示) of approved amounts: which lines, their names, and the notice period.

``publish_notice`` lists, per ledger key of the year, the amount approved and not yet noticed (approved −
noticed; a negative line announces a reduction), records each line (``ledgers.events``, kind ``notice``)
with the publication date and the first day it may be disbursed, and returns the lines for the notice
file. The period is ``SETTLE_NOTICE_WORKING_DAYS`` working days (default 5; Monday to Friday, public
holidays and swapped working days are not modelled) after the publication day; 0 ends it at once.
Names: the dataset's registry name; the beneficiary's registry name for a platform (clause 7); a dataset
owner's company name is in no registry, so its code is shown.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from decimal import Decimal

import duckdb

from ledgers import events, signatures
from ledgers.runchain import current_anchor
from settlement.core.errors import UserError
from settlement.core.localtime import local_date

DEFAULT_WORKING_DAYS = 5


@dataclass(frozen=True)
class NoticeLine:
    year: int
    clause: int
    beneficiary_id: str
    beneficiary_name: str
    dataset_id: str
    dataset_name: str
    amount: Decimal


@dataclass(frozen=True)
class Notice:
    notice_id: str | None  # None when there was nothing to notice
    year: int
    published_on: dt.date
    payable_from: dt.date
    working_days: int
    lines: tuple[NoticeLine, ...]
    anchor: str = ""  # the ledger anchor (N:R:E:HASH) the list was made from (issue 15)
    keys: tuple[tuple[str, str], ...] = ()  # (approver, key fingerprint) registered


def today() -> dt.date:
    """Today's local date (P3, +08:00)."""
    return local_date(dt.datetime.now(dt.timezone.utc))


def working_days_setting() -> int:
    raw = os.environ.get("SETTLE_NOTICE_WORKING_DAYS", str(DEFAULT_WORKING_DAYS)).strip()
    if not raw.isdigit():
        raise UserError(f"SETTLE_NOTICE_WORKING_DAYS must be a whole number of days ≥ 0, got {raw!r}")
    return int(raw)


def payable_from(published_on: dt.date, working_days: int) -> dt.date:
    """First day a noticed line may be disbursed: the day after the ``working_days``-th working day
    (Mon–Fri) after publication; the publication day itself for 0."""
    day, left = published_on, working_days
    while left:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day if working_days == 0 else day + dt.timedelta(days=1)


# Per key of the year: approved − noticed, with the registry names (the dataset's name in the owner's period).
LINES_SQL = """
SELECT k.year, k.clause, k.beneficiary_id,
       CASE WHEN k.clause = 7 THEN coalesce((SELECT p.name FROM platforms p WHERE p.platform_id = k.beneficiary_id),
                                            k.beneficiary_id)
            ELSE k.beneficiary_id END AS beneficiary_name,
       k.dataset_id,
       coalesce((SELECT d.name FROM datasets d WHERE d.dataset_id = k.dataset_id
                 ORDER BY d.owner_id = k.beneficiary_id DESC, d.owner_from DESC NULLS LAST LIMIT 1), '') AS dataset_name,
       CAST(k.approved - k.noticed AS DECIMAL(18,2)) AS amount
FROM key_accounts k
WHERE k.year = ? AND k.approved <> k.noticed
ORDER BY k.clause, k.beneficiary_id, k.dataset_id
"""


def publish_notice(con: duckdb.DuckDBPyConnection, year: int, *, by: str, on: dt.date | None = None,
                   working_days: int | None = None) -> Notice:
    """Record the notice of every approved, not yet noticed amount of ``year`` and return its lines."""
    on = on or today()
    days = working_days_setting() if working_days is None else working_days
    until = payable_from(on, days)
    found: list[NoticeLine] = []
    notice_ref: list[str] = []
    made_from: list = []

    def build(c: duckdb.DuckDBPyConnection) -> list[dict]:
        refuse_unsigned(c, "notice")
        made_from[:] = [current_anchor(c), tuple(c.execute(
            "SELECT name, fingerprint FROM approver_keys ORDER BY name").fetchall())]
        found[:] = [NoticeLine(*row) for row in c.execute(LINES_SQL, [year]).fetchall()]
        if not found:
            return []
        n = c.execute("SELECT count(DISTINCT ref) + 1 FROM lifecycle_events WHERE kind = 'notice' AND year = ?",
                      [year]).fetchall()[0][0]
        notice_ref.append(f"N{year}-{n:03d}")
        return [dict(kind="notice", year=year, ref=notice_ref[0], clause=x.clause, beneficiary_id=x.beneficiary_id,
                     dataset_id=x.dataset_id, amount=x.amount, actor=by, note=f"{days} working days",
                     on_date=on, until_date=until) for x in found]

    events.record(con, build)
    return Notice(notice_ref[0] if notice_ref else None, year, on, until, days, tuple(found), *made_from)


def refuse_unsigned(con: duckdb.DuckDBPyConnection, what: str) -> None:
    """No notice or disbursement while an approval is not validly signed (ledgers.signatures)."""
    problem = signatures.first_problem(con)
    if problem:
        raise UserError(f"{what} refused: {problem}; run settle ledger verify", code="conflict")


CLAUSE_ZH = {6: "第6条 奖励", 7: "第7条 补贴"}
NOTICE_HEADERS = ("公示编号", "年度", "条款", "企业名称", "企业代码", "数据集编号", "数据集名称", "审核通过金额（元）",
                  "公示日期", "可拨付日期", "账本锚点")


def notice_document(notice: Notice):
    """The notice list (公示名单) as a document: one row per line, the period in the heading."""
    from settlement.lifecycle.documents import Document, Section

    rows = tuple((notice.notice_id, x.year, CLAUSE_ZH[x.clause], x.beneficiary_name, x.beneficiary_id, x.dataset_id,
                  x.dataset_name, x.amount, notice.published_on.isoformat(), notice.payable_from.isoformat(),
                  notice.anchor) for x in notice.lines)
    keys = "；".join(f"{name} {fp}" for name, fp in notice.keys) or "无（审核未签名）"
    period = (f"公示期：{notice.working_days}个工作日，自{notice.published_on.isoformat()}起；"
              f"无异议的，自{notice.payable_from.isoformat()}起拨付") if notice.lines else "无待公示金额"
    return Document(title=f"{notice.year}年度数据交易奖励与补贴公示",
                    lines=(period, f"账本锚点：{notice.anchor}", f"审核人公钥：{keys}"),
                    sections=(Section("公示名单", NOTICE_HEADERS, rows),))
