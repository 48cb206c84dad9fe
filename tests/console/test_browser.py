"""The web console in a real browser (Debian chromium via Playwright) against a real `settle serve`.

One server and one browser for the module; each role signs in in its own browser context (own cookies).
Every request a page makes is recorded: none may go to another host than the server.
"""

from __future__ import annotations

import csv
import io
import zipfile
from urllib.parse import quote, urlsplit

import pytest

from tests.console.conftest import OPERATOR, OWNER, SCREENSHOTS

UPLOAD_CSV = (
    "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n"
    f"CONSOLE-0001,{OPERATOR},BJ-SPEECH-ZH,{OWNER},91330110122690329Q,2025-03-10T10:00:00,1234.50\n"
    f"CONSOLE-0002,{OPERATOR},BJ-SPEECH-ZH,{OWNER},91330102605400453Q,2025-03-11T10:00:00,100.00\n"
)


class Session:
    """A signed-in browser context and the URLs of every request its pages made."""

    def __init__(self, browser, server, role: str) -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True,
                                           locale="zh-CN")
        self.requests: list[str] = []
        self.context.on("request", lambda r: self.requests.append(r.url))
        self.page = self.context.new_page()
        self.page.goto(server.url + "/")  # not signed in: the sign-in form
        assert self.page.url.endswith("/login")
        self.page.fill("#token", server.tokens[role])
        self.page.click("button[type=submit]")
        self.page.wait_for_url(server.url + "/")

    def goto(self, path: str):
        return self.page.goto(self.server.url + path)

    def foreign(self) -> list[str]:
        host = urlsplit(self.server.url).netloc
        return [u for u in self.requests if not u.startswith(("data:", "blob:")) and urlsplit(u).netloc != host]


@pytest.fixture(scope="module")
def sessions(browser, server):
    made: dict[str, Session] = {}

    def get(role: str) -> Session:
        if role not in made:
            made[role] = Session(browser, server, role)
        return made[role]

    yield get
    for s in made.values():
        s.context.close()


def _shot(session: Session, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    session.page.wait_for_timeout(300)  # the chart's first frame
    session.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_owner_sees_own_datasets_with_names_callers_and_chart(sessions):
    s = sessions("owner")
    s.goto("/?year=2025")
    text = s.page.inner_text("main")
    assert "中文语音语料 Mandarin speech corpus" in text and "BJ-SPEECH-ZH" in text  # name next to code
    # sample_trades/README 2025: B17, B18, B19, B26 and the Excel exports' B27, B28, B29: 7 groups,
    # base 433,345.60, 10% = 43,334.56
    assert "非关联调用企业: 7 家，已超过 3 家：满足条件" in text
    assert "¥43,334.56" in text
    assert "HZ-TRAFFIC-2023" not in text  # another owner's dataset
    assert s.page.locator(".chart canvas").count() >= 1  # ECharts drew the monthly revenue
    _shot(s, "owner")
    s.goto("/?year=2024&lang=en")
    assert "Sign out" in s.page.inner_text("header")
    assert "of more than 3" in s.page.inner_text("main")
    s.goto("/?lang=zh-CN")


def test_owner_downloads_statement_csv_and_xlsx(sessions):
    s = sessions("owner")
    s.goto("/?year=2025")
    with s.page.expect_download() as got:
        s.page.click("#statement-csv")
    rows = list(csv.DictReader(io.StringIO(open(got.value.path(), encoding="utf-8-sig").read())))
    speech = next(r for r in rows if r["dataset_id"] == "BJ-SPEECH-ZH")
    assert speech["dataset_name"] == "中文语音语料 Mandarin speech corpus" and speech["payable"] == "43334.56"
    with s.page.expect_download() as got:
        s.page.click("#statement-xlsx")
    with zipfile.ZipFile(got.value.path()) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    assert OWNER in strings  # the credit code is a text cell, not a number


def test_operator_uploads_by_file_picker_sees_report_and_retracts_with_confirmation(sessions, tmp_path):
    s = sessions("operator")
    assert "西湖数据交易所 Xihu Data Exchange" in s.page.inner_text("main")
    _shot(s, "operator")
    path = tmp_path / "console_upload.csv"
    path.write_text(UPLOAD_CSV)
    s.page.set_input_files("#file", str(path))
    s.page.click("#upload-submit")
    s.page.wait_for_selector("#upload-report")
    assert s.page.inner_text("#report-status") == "stored"
    s.goto("/?year=2025")
    assert "暂定" in s.page.inner_text("#provisional")  # trades since the year's last run
    row = s.page.locator("#uploads tr", has_text="console_upload.csv")
    row.locator("a", has_text="撤回").click()
    assert "确认撤回" in s.page.inner_text("main")
    s.page.click("#confirm-retract")
    assert s.page.inner_text("#upload-status") == "已撤回"


def test_operator_bad_file_report_groups_errors_and_offers_rejected_rows(sessions, tmp_path):
    s = sessions("operator")
    s.goto("/")
    path = tmp_path / "bad.csv"
    path.write_text(UPLOAD_CSV.replace("1234.50", "12x4.50").replace(OPERATOR + ",BJ", "91330105822722504M,BJ", 1))
    s.page.set_input_files("#file", str(path))
    s.page.click("#upload-submit")
    s.page.wait_for_selector("#upload-report")
    assert s.page.inner_text("#report-status") == "rejected"
    with s.page.expect_download() as got:
        s.page.click("#rejected-rows")
    # the operator's own rows and columns back, with what to fix (issue 10 item 4)
    import csv

    back = list(csv.reader(open(got.value.path(), encoding="utf-8-sig", newline="")))
    sent = list(csv.reader(path.read_text().splitlines()))
    assert back[0] == sent[0] + ["error_column", "error_reason"]
    assert [row[:7] for row in back[1:]] == [sent[1]]  # only the bad row, exactly as sent
    assert back[1][7] == "amount; platform_id"


def test_regulator_overview_sql_paging_and_csv(sessions):
    s = sessions("regulator")
    s.goto("/?year=2024")
    text = s.page.inner_text("main")
    assert "各条款合计" in text and "未计入交易额（按原因）" in text and "关联交易（附关联路径）" in text
    _shot(s, "regulator")
    sql = "SELECT trade_id, amount FROM trades ORDER BY trade_id"
    s.goto("/sql?sql=" + quote(sql))
    assert s.page.locator("#sql-result tbody tr").count() > 0
    s.page.fill("#sql", "SELECT range AS n FROM range(250)")
    s.page.click("#run-sql")
    assert s.page.locator("#sql-result tbody tr").count() == 100
    assert "sql=SELECT" in s.page.url  # the query is in the URL: shareable
    s.page.click("#next-page")
    assert s.page.inner_text("#sql-result tbody tr >> nth=0").strip() == "100"
    with s.page.expect_download() as got:
        s.page.click("#sql-csv")
    lines = open(got.value.path(), encoding="utf-8-sig").read().splitlines()
    assert lines[0] == "n" and len(lines) == 251  # the full result, past the page and row cap
    _shot(s, "regulator-sql")


def test_regulator_runs_verify_and_tokens(sessions):
    s = sessions("regulator")
    s.goto("/runs?verify=1")
    assert "哈希链校验通过" in s.page.inner_text("#verify-result")
    s.goto("/tokens")
    s.page.select_option("#role", "owner")
    s.page.fill("#scope_id", OWNER)
    s.page.fill("#label", "console test")
    s.page.click("form[action='/tokens'] button")
    assert s.page.inner_text("#new-token").startswith("stl_")
    row = s.page.locator("#tokens tr", has_text="console test")
    row.locator("button").click()
    assert s.page.locator("#tokens tr", has_text="console test").locator("button").count() == 0


def test_cross_tenant_urls_answer_404_or_403_in_the_page(sessions):
    owner = sessions("owner")
    response = owner.goto("/datasets/HZ-TRAFFIC-2023?year=2024")  # another owner's dataset
    assert response.status == 404 and "no dataset 'HZ-TRAFFIC-2023'" in owner.page.inner_text("#error-message")
    response = owner.goto("/datasets/NO-SUCH?year=2024")
    assert response.status == 404 and "no dataset 'NO-SUCH'" in owner.page.inner_text("#error-message")
    assert owner.goto("/sql?sql=SELECT+1").status == 403
    assert owner.goto("/uploads/1").status == 403
    operator = sessions("operator")
    assert operator.goto("/uploads/1").status == 404  # the Binjiang platform's upload
    assert operator.goto("/tokens").status == 403
    assert operator.goto("/datasets/BJ-SPEECH-ZH?year=2024").status == 403


def test_docs_render_offline(sessions):
    s = sessions("regulator")
    s.goto("/docs")
    s.page.wait_for_selector(".swagger-ui .info .title", timeout=15000)
    assert "Data-exchange settlement API" in s.page.inner_text(".swagger-ui .info .title")
    _shot(s, "docs")


def test_no_page_requested_another_host(sessions):
    for role in ("owner", "operator", "regulator"):
        s = sessions(role)
        assert s.requests, role
        assert s.foreign() == [], (role, s.foreign())
