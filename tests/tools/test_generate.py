"""settlement.tools.credit_codes and `settle generate` (issue 2 item 8): valid, skewed, deterministic data."""

from __future__ import annotations

import csv
import hashlib
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from stdnum.cn import uscc

from settlement.tools.credit_codes import ALPHABET, check_character_indices, credit_code, credit_codes
from settlement.tools.generate import GenerateSpec, generate, parse_size, spec_errors
from settlement.tools.world import (
    AFFILIATION_COLUMNS,
    DATASET_COLUMNS,
    PLATFORM_COLUMNS,
    PRIOR_AWARD_COLUMNS,
    TRADE_COLUMNS,
)

# ------------------------------------------------------------------------------------------ credit codes


def test_known_code_check_character_matches_stdnum():
    # stdnum's own doctest example: 91110000600037341L. Our vectorised check over its first 17 chars
    # must give 'L' (P4: check character verified, GB 32100-2015).
    first17 = np.array([[ALPHABET.index(c) for c in "91110000600037341"]])
    assert ALPHABET[int(check_character_indices(first17)[0])] == "L"
    assert uscc.calc_check_digit("91110000600037341") == "L"


def test_generated_codes_are_valid_distinct_and_well_formed():
    codes = credit_codes(np.arange(20_000))
    assert len(set(codes.tolist())) == 20_000
    bad = [c for c in codes.tolist() if not uscc.is_valid(c)]
    assert bad == []
    assert all(c.startswith("9133") and len(c) == 18 for c in codes.tolist())  # enterprise, Zhejiang/Hangzhou


def test_codes_cover_letter_check_characters_and_org_check_x():
    # Enough serials to hit letter check characters and the GB 11714 'X' (10) organisation check.
    codes = credit_codes(np.arange(5_000)).tolist()
    assert any(c[-1].isalpha() for c in codes)
    assert any(c[16] == "X" for c in codes)


def test_code_is_a_function_of_the_serial():
    assert credit_code(12345) == str(credit_codes([0, 12345])[1])
    assert credit_code(7) == credit_code(7)
    assert credit_code(7) != credit_code(8)


def test_serial_out_of_range_is_refused():
    with pytest.raises(ValueError):
        credit_codes([10**8])


# ------------------------------------------------------------------------------------------ generate


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("gen")
    result = generate(GenerateSpec(out=out, parties=400, relations=600, trades=5_000, seed=7))
    return out, result


def test_files_and_columns_follow_the_contract(small):
    out, result = small
    assert [p.name for p in result.trade_files] == ["trades.csv"]
    expected = {
        "trades.csv": TRADE_COLUMNS,
        "datasets.csv": DATASET_COLUMNS,
        "platforms.csv": PLATFORM_COLUMNS,
        "affiliations.csv": AFFILIATION_COLUMNS,
        "prior_awards.csv": PRIOR_AWARD_COLUMNS,
    }
    for name, columns in expected.items():
        with open(out / name, encoding="utf-8") as fh:
            assert tuple(fh.readline().strip().split(",")) == columns, name
    assert set(TRADE_COLUMNS) >= {"trade_id", "platform_id", "dataset_id", "seller_id", "buyer_id", "traded_at",
                                  "amount", "kind", "ref_trade_id"}
    assert result.rows == 5_000 and result.refunds == 100 and result.sales == 4_900  # 2 % refunds


def test_every_credit_code_is_valid(small):
    out, _ = small
    codes = set()
    for row in _read(out / "trades.csv"):
        codes |= {row["platform_id"], row["seller_id"], row["buyer_id"]}
    codes |= {r["owner_id"] for r in _read(out / "datasets.csv")}
    codes |= {r["platform_id"] for r in _read(out / "platforms.csv")}
    for r in _read(out / "affiliations.csv"):
        codes |= {x for x in (r["a_id"], r["b_id"]) if not x.startswith("P:")}
    assert [c for c in codes if not uscc.is_valid(c)] == []


def test_trade_rows_are_valid_per_contract(small):
    out, _ = small
    rows = _read(out / "trades.csv")
    ids = [(r["platform_id"], r["trade_id"]) for r in rows]
    assert len(set(ids)) == len(ids)  # unique per platform
    datasets = {r["dataset_id"]: r["owner_id"] for r in _read(out / "datasets.csv")}
    platforms = {r["platform_id"] for r in _read(out / "platforms.csv")}
    for r in rows:
        assert r["buyer_id"] != r["seller_id"]
        assert r["dataset_id"] in datasets and r["platform_id"] in platforms
        assert r["seller_id"] == datasets[r["dataset_id"]]  # the owner sells its dataset
        amount = Decimal(r["amount"])
        assert amount > 0 and amount == amount.quantize(Decimal("0.01")) and "." in r["amount"]
        assert r["kind"] in ("sale", "refund")
        ts = r["traded_at"]
        assert len(ts) in (19, 20, 25) and ts[10] == "T" and (len(ts) == 19 or ts.endswith(("Z", "+08:00")))
    forms = {len(r["traded_at"]) for r in rows}
    assert forms == {19, 20, 25}  # local, UTC 'Z' and '+08:00' all occur (P3)
    years = {r["traded_at"][:4] for r in rows}
    assert {"2023", "2024", "2025", "2026"} <= years  # both sides of the window and of year boundaries (P2)
    assert any(r["traded_at"][:10] < "2023-05-08" for r in rows)
    assert any(r["traded_at"][:10] > "2026-05-08" for r in rows)


def test_refunds_reference_an_earlier_sale_on_the_same_platform_and_do_not_exceed_it(small):
    out, _ = small
    rows = _read(out / "trades.csv")
    position = {(r["platform_id"], r["trade_id"]): i for i, r in enumerate(rows)}
    refunded: dict[tuple[str, str], Decimal] = {}
    for i, r in enumerate(rows):
        if r["kind"] != "refund":
            assert r["ref_trade_id"] == ""
            continue
        key = (r["platform_id"], r["ref_trade_id"])
        assert key in position, r  # P9: same platform
        sale = rows[position[key]]
        assert sale["kind"] == "sale" and position[key] < i  # placed after its sale (chunk-safe)
        assert (sale["dataset_id"], sale["buyer_id"], sale["seller_id"]) == (
            r["dataset_id"], r["buyer_id"], r["seller_id"])
        refunded[key] = refunded.get(key, Decimal(0)) + Decimal(r["amount"])
    for key, total in refunded.items():
        assert total <= Decimal(rows[position[key]]["amount"])  # P9: refunds never exceed the sale
    assert any(total == Decimal(rows[position[k]]["amount"]) for k, total in refunded.items())  # full refunds
    assert any(total < Decimal(rows[position[k]]["amount"]) for k, total in refunded.items())  # partial ones


def test_skew_few_big_datasets_many_small(small):
    out, _ = small
    counts = pl.read_csv(out / "trades.csv", infer_schema=False)["dataset_id"].value_counts(sort=True)["count"]
    # Zipf-like: the top dataset carries far more than the median one.
    assert counts[0] >= 10 * counts[len(counts) // 2]


def test_affiliations_are_loadable_shapes(small):
    out, _ = small
    rows = _read(out / "affiliations.csv")
    assert len(rows) == 600
    relations = {r["relation"] for r in rows}
    assert {"equity", "control", "family"} <= relations
    pairs = [(r["a_id"], r["b_id"]) for r in rows]
    assert len(set(pairs)) == len(pairs)
    held: dict[str, Decimal] = {}
    for r in rows:
        assert r["a_id"] != r["b_id"]  # no self-loops
        if r["relation"] == "equity":
            share = Decimal(r["share"])
            assert Decimal(0) < share <= 1
            held[r["b_id"]] = held.get(r["b_id"], Decimal(0)) + share
        else:
            assert r["share"] == ""
        if r["relation"] == "family":
            assert r["a_id"].startswith("P:") and r["b_id"].startswith("P:")
        if r["valid_from"] and r["valid_to"]:
            assert r["valid_from"] <= r["valid_to"]
        assert r["exempt"] in ("true", "false")
    assert max(held.values()) <= 1  # equity into one company never above 100 %
    assert any(r["a_id"].startswith("P:") and r["relation"] == "equity" for r in rows)  # persons hold shares
    dated = sum(1 for r in rows if r["valid_from"] or r["valid_to"])
    assert 5 <= dated <= 70  # ~5 % of 600


def test_deterministic_with_the_seed(tmp_path, small):
    out, _ = small
    again = tmp_path / "again"
    generate(GenerateSpec(out=again, parties=400, relations=600, trades=5_000, seed=7))
    other = tmp_path / "other"
    generate(GenerateSpec(out=other, parties=400, relations=600, trades=5_000, seed=8))

    def digest(d: Path, name: str) -> str:
        return hashlib.sha256((d / name).read_bytes()).hexdigest()

    for name in ("trades.csv", "datasets.csv", "affiliations.csv", "platforms.csv", "prior_awards.csv"):
        assert digest(again, name) == digest(out, name), name
    assert digest(other, "trades.csv") != digest(out, "trades.csv")


def test_chunks_hold_the_same_rows_as_one_file(tmp_path, small):
    out, _ = small
    result = generate(GenerateSpec(out=tmp_path, parties=400, relations=600, trades=5_000, seed=7, chunk_rows=1_500))
    assert [p.name for p in result.trade_files] == [
        "trades_00001.csv", "trades_00002.csv", "trades_00003.csv", "trades_00004.csv"]
    chunks = [_read(p) for p in result.trade_files]
    assert [len(c) for c in chunks] == [1_500, 1_500, 1_500, 500]
    assert [r for c in chunks for r in c] == _read(out / "trades.csv")


def test_parquet_has_the_same_rows(tmp_path, small):
    out, _ = small
    result = generate(GenerateSpec(out=tmp_path, parties=400, relations=600, trades=5_000, seed=7, fmt="parquet"))
    frame = pl.read_parquet(result.trade_files[0])
    assert tuple(frame.columns) == TRADE_COLUMNS
    expected = pl.read_csv(out / "trades.csv", infer_schema=False)
    assert frame.with_columns(pl.col("ref_trade_id").fill_null("")).equals(
        expected.with_columns(pl.col("ref_trade_id").fill_null(""))
    )


def test_bytes_target_stops_once_reached(tmp_path):
    result = generate(GenerateSpec(out=tmp_path, parties=100, relations=10, bytes_target=1))
    assert result.trade_bytes >= 1 and result.rows == 1_000_000  # one whole block, then stop
    assert parse_size("4.5GiB") == int(4.5 * 2**30) and parse_size("500MB") == 500 * 10**6


def test_bad_specs_are_user_errors(tmp_path):
    assert spec_errors(GenerateSpec(out=tmp_path, parties=100, relations=10)) == ["give --trades or --bytes-target"]
    assert spec_errors(GenerateSpec(out=tmp_path, parties=2, relations=0, trades=1)) == [
        "--parties must be at least 5 (platforms + a seller and a buyer)"]
    assert "--format must be one of csv, parquet" in spec_errors(
        GenerateSpec(out=tmp_path, parties=10, relations=0, trades=1, fmt="xml"))


def test_cli_generate_writes_files_and_reports_user_errors(tmp_path):
    from typer.testing import CliRunner

    from settlement.cli import app

    out = tmp_path / "cli"
    done = CliRunner().invoke(app, ["generate", "--trades", "300", "--parties", "50", "--relations", "20",
                                    "--out", str(out), "--chunk-rows", "200", "--seed", "5"])
    assert done.exit_code == 0, done.output
    assert "300 rows (294 sales, 6 refunds)" in done.output
    assert sorted(p.name for p in out.iterdir()) == [
        "affiliations.csv", "datasets.csv", "platforms.csv", "prior_awards.csv", "trades_00001.csv",
        "trades_00002.csv"]
    bad = CliRunner().invoke(app, ["generate", "--out", str(out), "--parties", "50", "--bytes-target", "4XB"])
    assert bad.exit_code == 1
    assert "not a size: '4XB'" in bad.output
