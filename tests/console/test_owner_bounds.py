"""The owner's main page is bounded (issue 12: a 2.4 MB page at 2M trades): per dataset the first 10 caller
groups (counted first) with at most 5 buyers each, the merge paths of the buyers shown, the exclusion counts
by reason (all) and the first 5 excluded trades, each rest as an exact "and K more" link to the dataset page,
which shows everything. In process, on a small store made for it: one dataset with 13 caller groups (one of
7 affiliated buyers) and 8 excluded trades."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.console import owner
from api.settings import Settings
from settlement.access import tokens
from settlement.core import store
from settlement.core.params import load_params
from settlement.explain import CallerGroup
from settlement.tools.credit_codes import credit_code
from settlement.tools.demo import load_and_settle

OWNER = credit_code(1)
PLATFORM = credit_code(2)
RELATED = credit_code(5)  # the owner holds 30 % of it: its purchases are RELATED_PARTY (P6, P12)
HOLDING = credit_code(3)  # holds 30 % of each GROUPED buyer: one caller group of 7 (P6, P7)
GROUPED = sorted(credit_code(n) for n in range(10, 17))
SINGLES = sorted(credit_code(n) for n in range(20, 32))  # 12 unrelated buyers: 12 groups of one
URL = "/datasets/DS-BIG?year=2024"


def write_folder(folder: Path) -> None:
    """Registries and one trade file: DS-BIG (13 caller groups, 8 excluded trades) and DS-SMALL (one sale)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "platforms.csv").write_text(f"platform_id,name,certified_on,certified_until\n"
                                          f"{PLATFORM},西湖数据交易所,2023-01-01,\n")
    (folder / "datasets.csv").write_text(
        "dataset_id,owner_id,name,certified_on,certified_until,owner_from\n"
        f"DS-BIG,{OWNER},大数据集 Big dataset,2023-05-08,,\nDS-SMALL,{OWNER},小数据集 Small dataset,2023-05-08,,\n")
    (folder / "affiliations.csv").write_text("a_id,b_id,relation,share,valid_from,valid_to,exempt\n" + "".join(
        f"{HOLDING},{b},equity,0.30,,,false\n" for b in GROUPED) + f"{OWNER},{RELATED},equity,0.30,,,false\n")
    rows = [f"T{i:02d},{PLATFORM},DS-BIG,{OWNER},{b},2024-03-01T10:00:00,1000.00,sale,"
            for i, b in enumerate(GROUPED + SINGLES, start=1)]
    # a buyer the owner holds 30 % of: RELATED_PARTY, 6 trades
    rows += [f"X{i},{PLATFORM},DS-BIG,{OWNER},{RELATED},2024-04-01T10:00:00,500.00,sale," for i in range(1, 7)]
    # a sale refunded in full: FULLY_REFUNDED, the sale and its refund
    rows += [f"R1,{PLATFORM},DS-BIG,{OWNER},{SINGLES[0]},2024-05-01T10:00:00,300.00,sale,",
             f"R2,{PLATFORM},DS-BIG,{OWNER},{SINGLES[0]},2024-05-02T10:00:00,300.00,refund,R1"]
    rows += [f"S1,{PLATFORM},DS-SMALL,{OWNER},{SINGLES[1]},2024-03-01T10:00:00,200.00,sale,"]
    (folder / "trades_2024.csv").write_text(
        "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount,kind,ref_trade_id\n"
        + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """The store served in process, the owner signed in."""
    tmp = tmp_path_factory.mktemp("bounds")
    write_folder(tmp / "files")
    db = tmp / "bounds.duckdb"
    store.init(db)
    con = store.open_store(db)
    try:
        load_and_settle(con, tmp / "files", params=load_params(), by="test")
        token = tokens.create_token(con, "owner", scope_id=OWNER, created_by="test").token
    finally:
        con.close()
    with TestClient(create_app(Settings(db=db)), raise_server_exceptions=False) as c:
        csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
        assert c.post("/login", data={"token": token, "csrf": csrf}).status_code == 200
        yield c


def card(html: str, dataset_id: str = "DS-BIG") -> str:
    return re.search(rf'<article class="card dataset" id="ds-{dataset_id}">(.*?)</article>', html, re.S).group(1)


def groups(html: str) -> list[tuple[str, list[str]]]:
    """(group heading, its buyers' codes) in page order."""
    items = re.findall(r'<li class="(?:counted|not-counted)">([^\n]+)\n  <ul>(.*?)</ul>', html, re.S)
    return [(head.strip(), re.findall(r"<li><code>([^<]+)</code>", buyers)) for head, buyers in items]


def links(html: str, cls: str) -> list[tuple[str, str]]:
    return re.findall(rf'<a class="{cls}" href="([^"]+)">([^<]+)</a>', html)


def excluded_trades(html: str) -> list[str]:
    return re.findall(r"<tr><td><code>([^<]+)</code>", html)


def test_the_main_page_shows_the_first_groups_buyers_and_exclusions_with_links_to_the_rest(client):
    html = card(client.get("/?year=2024&lang=en").text)
    shown = groups(html)
    assert [head for head, _ in shown] == [
        "group 1 · ¥7,000.00 · counted", *(f"group {n} · ¥1,000.00 · counted" for n in range(2, 11))]
    assert shown[0][1] == GROUPED[:5]  # the affiliated group first (its id sorts before own:…), 5 of 7
    assert [b for _, bs in shown[1:] for b in bs] == SINGLES[:9]
    assert links(html, "more-buyers") == [(URL, "and 2 more buyers on the dataset page")]
    assert links(html, "more-groups") == [(URL, "and 3 more caller groups on the dataset page")]
    # merge paths: only those of the buyers shown (the 2nd to 5th buyer joined to the first)
    assert len(re.findall(r"<div class=\"merge\">.*?</div>", html, re.S)) == 1
    assert len(re.findall(r"<p>", re.search(r'<div class="merge">(.*?)</div>', html, re.S).group(1))) == 4
    # every exclusion counted by reason; the first 5 listed; the rest a link
    assert re.findall(r"<tr><td>([^<]+) <small><code>([A-Z_]+)</code></small></td><td class=\"num\">(\d+)</td>",
                      html) == [("fully refunded", "FULLY_REFUNDED", "2"),
                                ("related-party trade (with the record path)", "RELATED_PARTY", "6")]
    assert excluded_trades(html) == ["R1", "R2", "X1", "X2", "X3"]
    assert links(html, "more-excluded") == [(URL, "3 more on the dataset page")]
    assert "more not listed" not in html
    # the figures as before
    assert "Unrelated callers: 13 of more than 3: qualifies" in html
    assert '<th>Base</th><td class="num">¥19,000.00</td>' in html
    assert '<th>Gross</th><td class="num">¥1,900.00</td>' in html


def test_the_bounds_read_in_chinese_by_default(client):
    html = card(client.get("/?year=2024&lang=zh-CN").text)
    assert links(html, "more-buyers") == [(URL, "另有 2 家调用企业，见数据集页面")]
    assert links(html, "more-groups") == [(URL, "另有 3 个调用企业组，见数据集页面")]
    assert links(html, "more-excluded") == [(URL, "另有 3 笔未计入的交易，见数据集页面")]
    assert groups(html)[0][0] == "组 1 · ¥7,000.00 · 计入"


def test_the_dataset_page_shows_every_group_buyer_and_exclusion(client):
    html = card(client.get(URL + "&lang=en").text)
    shown = groups(html)
    assert [head for head, _ in shown] == [
        "group 1 · ¥7,000.00 · counted", *(f"group {n} · ¥1,000.00 · counted" for n in range(2, 14))]
    assert shown[0][1] == GROUPED and [b for _, bs in shown[1:] for b in bs] == SINGLES
    assert len(re.findall(r"<p>", re.search(r'<div class="merge">(.*?)</div>', html, re.S).group(1))) == 6
    assert excluded_trades(html) == ["R1", "R2", "X1", "X2", "X3", "X4", "X5", "X6"]
    assert 'class="more' not in html


def test_a_dataset_within_the_bounds_has_no_more_links(client):
    html = card(client.get("/?year=2024&lang=en").text, "DS-SMALL")
    assert groups(html) == [("group 1 · ¥200.00 · counted", [SINGLES[1]])]
    assert 'class="more' not in html


def test_many_datasets_are_paged_and_the_total_covers_all(client, monkeypatch):
    monkeypatch.setattr(owner, "DATASETS_PER_PAGE", 1)
    first = client.get("/?year=2024&lang=en&page=1").text  # a URL not rendered yet (bodies are cached per URL)
    second = client.get("/?year=2024&lang=en&page=2").text
    assert re.findall(r'id="ds-([^"]+)"', first) == ["DS-BIG"] and re.findall(r'id="ds-([^"]+)"', second) == [
        "DS-SMALL"]
    assert re.findall(r'<nav class="pages"><span>([^<]+)</span>', first) == ["Datasets 1–1 of 2"] * 2
    assert links(first, "next-page") == [("/?year=2024&amp;page=2", "Next page")] * 2
    assert links(second, "prev-page") == [("/?year=2024&amp;page=1", "Previous page")] * 2
    assert links(second, "next-page") == []
    assert "第 2–2 个数据集，共 2 个" in client.get("/?year=2024&lang=zh-CN&page=2").text
    total = re.search(r"Payable this year 2024: <strong>([^<]+)</strong>", second).group(1)
    assert total == "¥1,900.00"  # DS-BIG's gross; DS-SMALL (one caller) earns nothing


def test_counted_groups_come_first_each_side_in_explains_order():
    def g(gid: str, counted: bool, n: int) -> CallerGroup:
        buyers = tuple((f"{gid}-{i}", 1, Decimal("1.00")) for i in range(n))
        return CallerGroup(gid, counted, Decimal(n), buyers, tuple(f"path {gid}-{i}" for i in range(1, n)))

    groups_ = (g("a", False, 1), g("b", True, 3), g("c", False, 2), g("d", True, 1))
    shown, more = owner.shown_groups(groups_, 3, 2)
    assert [(s.number, s.group.group_id, [b[0] for b in s.buyers], s.merge_paths, s.more_buyers) for s in shown] == [
        (1, "b", ["b-0", "b-1"], ("path b-1",), 1), (2, "d", ["d-0"], (), 0), (3, "a", ["a-0"], (), 0)]
    assert more == 1
    every, none_left = owner.shown_groups(groups_, None, None)
    assert [s.group.group_id for s in every] == ["b", "d", "a", "c"] and none_left == 0
    assert every[0].merge_paths == ("path b-1", "path b-2") and every[0].more_buyers == 0


def merge_texts(html: str) -> list[str]:
    return re.findall(r"<p>(.*?)</p>", re.search(r'<div class="merge">(.*?)</div>', html, re.S).group(1), re.S)


def test_the_main_page_adds_the_paths_of_its_page_that_the_dataset_page_shows(client, monkeypatch):
    """Merge paths are added to the cards of the page shown (owner._page_paths), not to every card of the
    owner: the same texts as the dataset page's for the buyers shown, on whichever page the card falls."""
    full = merge_texts(card(client.get(URL + "&lang=en").text))
    assert len(full) == 6 and full[0].startswith(f"{GROUPED[0]} and {GROUPED[1]} are one caller group of 2024")
    assert merge_texts(card(client.get("/?year=2024&lang=en").text)) == full[:4]
    monkeypatch.setattr(owner, "DATASETS_PER_PAGE", 1)
    assert merge_texts(card(client.get("/?year=2024&lang=en&page=1&p=paths").text)) == full[:4]
    assert 'class="merge"' not in card(client.get("/?year=2024&lang=en&page=2&p=paths").text, "DS-SMALL")
