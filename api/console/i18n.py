"""Words and formats of the web console: zh-CN (default) and English (issue 12 item 3).

Terms follow shared/GLOSSARY.md (its zh-CN column for pages), including the P12 reason texts. Amounts
are ``¥1,234.50``; instants are shown in Asia/Shanghai. Must not import anything of the project.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

LANGS = ("zh-CN", "en")
SHANGHAI = ZoneInfo("Asia/Shanghai")

# P12 reason codes as shown to people (GLOSSARY).
REASONS = {
    "RETRACTED": ("所在上传批次已撤回", "its upload was retracted"),
    "OUT_OF_WINDOW": ("交易日期不在政策有效期内", "traded outside the policy window"),
    "NOT_CERTIFIED": ("交易日数据集未经认定", "dataset not certified on the trade day"),
    "PLATFORM_NOT_CERTIFIED": ("交易日平台未经认定", "platform not certified on the trade day"),
    "RELATED_PARTY": ("关联交易（附关联路径）", "related-party trade (with the record path)"),
    "FULLY_REFUNDED": ("已全额退款", "fully refunded"),
    "BELOW_CALLER_THRESHOLD": ("非关联调用企业未超过3家", "not more than 3 unrelated callers"),
}

M = {
    "app": ("数据交易奖补核算", "Data-exchange settlement"),
    "sign_in": ("登录", "Sign in"), "sign_out": ("退出", "Sign out"),
    "token": ("访问令牌", "Access token"),
    "token_hint": ("请输入监管部门发放的令牌（stl_…）", "Paste the token you were given (stl_…)"),
    "bad_token": ("令牌无效或已撤销", "Unknown or revoked token"),
    "rate_limited": ("登录尝试过多，请 {s} 秒后再试", "Too many sign-in attempts; try again in {s} s"),
    "bad_csrf": ("表单已过期，请刷新页面后重试", "The form expired; reload the page and try again"),
    "role_owner": ("数据集所有方", "dataset owner"), "role_operator": ("交易平台运营方", "operator"),
    "role_regulator": ("监管部门", "regulator"),
    "year": ("年度", "Year"), "no_run": ("{y} 年度尚无核算批次", "No settlement run for {y} yet"),
    "dataset": ("数据集", "Dataset"), "datasets": ("数据集", "Datasets"), "platform": ("数据交易平台", "Platform"),
    "callers": ("非关联调用企业", "Unrelated callers"),
    "callers_need": ("{n} 家 / 需超过 {t} 家：还需 {m} 家非关联调用企业",
                     "{n} of more than {t}: {m} more unrelated buyer{s} needed"),
    "callers_ok": ("{n} 家，已超过 {t} 家：满足条件", "{n} of more than {t}: qualifies"),
    "groups": ("调用企业组", "Caller groups"), "group": ("组", "group"),
    "buyers": ("调用企业", "Buyers"), "merge_path": ("关联路径", "Record path that merged them"),
    "counted": ("计入", "counted"), "not_counted": ("不计入（净额为零）", "not counted (net zero)"),
    "eligible_sales": ("有效销售笔数", "Eligible sales"),
    "base": ("计算基数", "Base"), "gross": ("奖励（未扣减）", "Gross"), "prior": ("已获资助", "Prior awards"),
    "payable": ("应付", "Payable"), "cap_share": ("年度补贴上限分配", "Cap share"),
    "cap": ("年度补贴上限（100万元）", "Annual cap"), "capped": ("已达上限", "capped"),
    "ledger": ("台账金额", "Ledger balance"), "paid": ("已拨付", "Paid so far"),
    "excluded": ("未计入的交易", "Excluded trades"), "reason": ("原因", "Reason"), "detail": ("说明", "Detail"),
    "trade": ("交易", "Trade"), "count": ("笔数", "Count"), "amount": ("金额", "Amount"),
    "none": ("无", "none"), "more_rows": ("另有 {n} 笔未列出", "{n} more not listed"),
    # the main page's bounds (links to the dataset page, which lists everything)
    "more_groups": ("另有 {k} 个调用企业组，见数据集页面", "and {k} more caller group{s} on the dataset page"),
    "more_buyers": ("另有 {k} 家调用企业，见数据集页面", "and {k} more buyer{s} on the dataset page"),
    "more_excluded": ("另有 {k} 笔未计入的交易，见数据集页面", "{k} more on the dataset page"),
    "datasets_page": ("第 {a}–{b} 个数据集，共 {n} 个", "Datasets {a}–{b} of {n}"),
    "revenue": ("月度销售额", "Monthly revenue"),
    "provisional": ("暂定：核算批次 {r} 之后又上传了 {n} 笔交易", "Provisional: {n} trades since run {r}"),
    "statement": ("对账单", "Statement"), "download_csv": ("下载 CSV", "Download CSV"),
    "download_xlsx": ("下载 Excel", "Download xlsx"),
    "no_datasets": ("本年度没有您名下的数据集", "No dataset of yours in this year"),
    "owner_total": ("本年应付合计", "Payable this year"),
    "upload": ("上传", "Upload"), "uploads": ("上传批次", "Uploads"), "choose_file": ("选择交易文件", "Trade file"),
    "upload_report": ("上传报告", "Upload report"), "status": ("状态", "Status"),
    "rows_read": ("读取行数", "Rows read"), "rows_stored": ("入库行数", "Rows stored"),
    "rows_rejected": ("拒绝行数", "Rows rejected"), "rows_duplicate": ("重复行数", "Duplicate rows"),
    "errors": ("错误", "Errors"), "rejected_rows": ("下载被拒绝的行", "Download the rejected rows"),
    "retract": ("撤回", "Retract"), "retracted": ("已撤回", "retracted"),
    "retract_confirm": ("确认撤回上传批次 {id}（{f}）？其交易保留备查，自下一核算批次起不再计入。",
                        "Retract upload {id} ({f})? Its trades stay stored for audit and count for nothing from the next run on."),
    "confirm": ("确认撤回", "Yes, retract"), "cancel": ("取消", "Cancel"),
    "uploaded_at": ("上传时间", "Uploaded at"), "file": ("文件", "File"),
    "volume": ("第七条交易额", "Clause-7 volume"), "subsidy": ("补贴", "Subsidy"),
    "payouts": ("应付款项", "Payouts"), "beneficiary": ("受益企业", "Beneficiary"), "clause": ("条款", "Clause"),
    "overview": ("年度概览", "Overview"), "totals": ("各条款合计", "Totals per clause"),
    "beneficiaries": ("受益企业数", "Beneficiaries"), "cap_hits": ("达到年度上限", "Cap hits"),
    "excluded_volume": ("未计入交易额（按原因）", "Excluded volume by reason"),
    "totals_chart": ("各年度奖补合计", "Totals per year and clause"),
    "sql": ("SQL 查询", "SQL console"), "run_query": ("执行", "Run"), "examples": ("示例查询", "Example queries"),
    "tables": ("表与字段说明", "Tables and columns"), "next_page": ("下一页", "Next page"),
    "prev_page": ("上一页", "Previous page"), "rows_page": ("第 {a}–{b} 行", "rows {a}–{b}"),
    "runs": ("核算批次", "Settlement runs"), "run": ("核算批次", "Run"), "started_at": ("开始时间", "Started"),
    "started_by": ("发起人", "Started by"), "entries": ("台账条目", "Ledger entries"), "delta": ("变动", "Delta"),
    "state": ("审核状态", "State"),
    "verify": ("台账校验", "Ledger verification"), "verify_ok": ("哈希链校验通过", "Hash chain verified"),
    "verify_bad": ("校验失败", "Verification failed"),
    "tokens": ("令牌管理", "Tokens"), "create": ("创建", "Create"), "revoke": ("撤销", "Revoke"),
    "role": ("角色", "Role"), "scope": ("范围", "Scope"), "label": ("备注", "Label"), "created_at": ("创建时间", "Created"),
    "token_once": ("新令牌（仅显示这一次）", "New token (shown this once only)"),
    "flags": ("风险提示", "Integrity flags"), "flags_none": ("尚未计算", "not computed yet"),
    "lifecycle_todo": ("审核、公示与拨付状态（只读）", "Review, notice and disbursement (read-only)"),
    "not_found": ("未找到", "Not found"), "forbidden": ("无权访问", "Forbidden"),
    "home": ("首页", "Home"), "api_docs": ("API 文档", "API docs"), "switch_lang": ("English", "中文"),
    "enterprise": ("企业", "Enterprise"), "as_of": ("核算批次 {r}（{t}）", "run {r} ({t})"),
}


def norm_lang(value: str | None) -> str | None:
    if not value:
        return None
    v = value.strip().lower()
    return "en" if v.startswith("en") else "zh-CN" if v.startswith("zh") else None


class Tr:
    """Translator bound to one language: ``t("key", **fmt)``, ``t.reason(code)``, ``t.money(x)``, ``t.time(x)``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else "zh-CN"
        self._i = 1 if self.lang == "en" else 0

    def __call__(self, key: str, **fmt) -> str:
        text = M[key][self._i]
        return text.format(**fmt) if fmt else text

    def reason(self, code: str) -> str:
        return REASONS[code][self._i] if code in REASONS else code

    def role(self, role: str) -> str:
        return self(f"role_{role}") if f"role_{role}" in M else role

    def callers(self, n: int, threshold: int | None, missing: int) -> str:
        if threshold is None:
            return str(n)
        if missing <= 0:
            return self("callers_ok", n=n, t=threshold)
        return self("callers_need", n=n, t=threshold, m=missing, s="" if missing == 1 else "s")

    @staticmethod
    def money(value) -> str:
        return money(value)

    @staticmethod
    def time(value) -> str:
        return local_time(value)


def money(value) -> str:
    """``¥1,234.50`` (exact: Decimal, two places); ``-¥5.00``; ``—`` for None."""
    if value is None:
        return "—"
    d = Decimal(str(value)).quantize(Decimal("0.01"))
    return ("-" if d < 0 else "") + f"¥{abs(d):,.2f}"


def local_time(value) -> str:
    """An instant in Asia/Shanghai, ``2026-11-30 19:36``; ISO strings are parsed; naive values are UTC (P3)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return str(value)
