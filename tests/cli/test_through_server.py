"""One door while the server runs (issue 11 item 6): with a REAL `settle serve` process on a store, the other
`settle` commands on that store go through its API and print exactly what they print without a server
(compared with a second store driven locally); a stale endpoint file is detected and removed; the endpoint
file is 0600 and a group/world-readable one is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETTLE = Path(sys.executable).parent / "settle"
SAMPLE = ROOT / "sample_trades"
REGISTRIES = (("datasets", "datasets.csv"), ("platforms", "platforms.csv"), ("affiliations", "affiliations.csv"),
              ("prior-awards", "prior_awards.csv"))

pytestmark = pytest.mark.skipif(not SETTLE.exists(), reason="the settle script is not installed")


def settle(*args, db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "160"}
    env.pop("SETTLE_DB", None)
    return subprocess.run([str(SETTLE), *map(str, args), "--db", str(db)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepared(db: Path) -> None:
    """A store with the sample registries, made in this process (quicker than four `settle load`)."""
    from settlement.core import store
    from settlement.inputs import registry

    store.init(db)
    con = store.open_store(db)
    try:
        for kind, name in REGISTRIES:
            registry.load_registry(con, kind.replace("-", "_"), SAMPLE / name, loaded_by="test")
    finally:
        con.close()


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(served, local): two stores prepared alike; `settle serve` runs on the first."""
    root = tmp_path_factory.mktemp("through-server")
    served, local = root / "served.duckdb", root / "local.duckdb"
    _prepared(served)
    _prepared(local)
    port = _free_port()
    log = (root / "serve.log").open("w")
    proc = subprocess.Popen([str(SETTLE), "serve", "--db", str(served), "--port", str(port), "--no-access-log"],
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200:
                break
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (root / "serve.log").read_text()
        time.sleep(0.2)
    yield served, local, proc
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    log.close()


def endpoint_file(db: Path) -> Path:
    return db.with_name(db.name + ".server.json")


def same(args, served: Path, local: Path, code: int = 0) -> subprocess.CompletedProcess:
    """Run one command on both stores: same exit code, same stdout, same stderr."""
    through, direct = settle(*args, db=served), settle(*args, db=local)
    assert through.returncode == direct.returncode == code, (through.stderr, direct.stderr)
    assert through.stdout == direct.stdout
    assert through.stderr == direct.stderr
    return through


def test_endpoint_file_is_private_and_names_the_server(stores):
    served, _, proc = stores
    path = endpoint_file(served)
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert data["pid"] == proc.pid and data["url"].startswith("http://127.0.0.1:") and data["token"]
    assert {"started_at", "token_id"} <= data.keys()


def test_commands_print_what_they_print_without_a_server(stores, tmp_path):
    served, local, _ = stores
    out = same(("ingest", SAMPLE / "trades_xihu_2023_2024.csv"), served, local)
    assert out.stdout.startswith("upload 1: trades_xihu_2023_2024.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("trade_id,platform_id\nx,y\n", encoding="utf-8")
    same(("ingest", bad, "--format", "json"), served, local, code=2)

    listed = [settle("uploads", "list", "--format", "json", db=db) for db in (served, local)]
    uploads = [json.loads(r.stdout) for r in listed]
    for u in uploads[0] + uploads[1]:
        u.pop("uploaded_at")
    assert uploads[0] == uploads[1] and uploads[0][0]["uploaded_by"].startswith("cli:")

    same(("run",), served, local)
    csv_out = same(("payouts", "--format", "csv"), served, local)
    assert csv_out.stdout.startswith("year,clause,beneficiary_id,dataset_id,amount\n")
    same(("payouts",), served, local)
    same(("payouts", "--state", "proposed", "--format", "json"), served, local)
    same(("uploads", "retract", "99"), served, local, code=1)
    same(("explain", "dataset", "BJ-SPEECH-ZH", "--year", "2024"), served, local)


def test_four_eyes_compares_the_real_people(stores):
    served, local, _ = stores
    runs = json.loads(settle("runs", "list", "--format", "json", db=served).stdout)
    run = next(r for r in runs if r["state"] == "proposed")
    refused = settle("approve", run["run_id"], "--by", run["started_by"], db=served)
    assert refused.returncode == 1 and "four eyes" in refused.stderr
    approved = settle("approve", run["run_id"], "--by", "reviewer-b", db=served)
    assert approved.returncode == 0 and approved.stdout.startswith(f"run {run['run_id']} approved by reviewer-b")
    after = json.loads(settle("runs", "list", "--format", "json", db=served).stdout)
    assert next(r for r in after if r["run_id"] == run["run_id"])["reviewed_by"] == "reviewer-b"


def test_a_readable_endpoint_file_is_refused(stores):
    served, _, _ = stores
    path = endpoint_file(served)
    path.chmod(0o644)
    try:
        result = settle("uploads", "list", db=served)
    finally:
        path.chmod(0o600)
    assert "lets others read it" in result.stderr.splitlines()[0]
    assert result.returncode == 1  # refused: the store is then opened directly, and the server holds it
    assert path.exists()


def test_a_stale_endpoint_file_is_detected_and_removed(tmp_path):
    db = tmp_path / "s.duckdb"
    _prepared(db)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    path = endpoint_file(db)
    path.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": gone.pid, "token": "stl_x"}))
    path.chmod(0o600)
    result = settle("uploads", "list", "--format", "json", db=db)
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert len(result.stderr.splitlines()) == 1 and "stale server endpoint file" in result.stderr
    assert not path.exists()


def test_a_stale_file_of_a_live_pid_that_does_not_answer(tmp_path):
    db = tmp_path / "s.duckdb"
    _prepared(db)
    path = endpoint_file(db)
    path.write_text(json.dumps({"url": f"http://127.0.0.1:{_free_port()}", "pid": os.getpid(), "token": "t"}))
    path.chmod(0o600)
    result = settle("payouts", "--format", "csv", db=db)
    assert result.returncode == 0 and result.stdout == "year,clause,beneficiary_id,dataset_id,amount\n"
    assert "nothing answers" in result.stderr and not path.exists()


def test_a_world_readable_file_without_a_server_is_refused_and_left(tmp_path):
    db = tmp_path / "s.duckdb"
    _prepared(db)
    path = endpoint_file(db)
    path.write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": os.getpid(), "token": "t"}))
    path.chmod(0o644)
    result = settle("uploads", "list", "--format", "json", db=db)
    assert result.returncode == 0 and "must be 0600" in result.stderr
    assert path.exists()


def _thin_trades(path: Path) -> Path:
    """Three callers of 1000.00 and a tiny fourth of XH-EDU-QA in 2024 (no other 2024 sale): one THIN_THRESHOLD flag."""
    from settlement.tools.credit_codes import credit_code

    rows = [f"THIN-{i},913301108573022438,XH-EDU-QA,913301024727064153,{credit_code(700 + i)},"
            f"2024-06-0{i + 1}T10:00:00+08:00,{amount}" for i, amount in enumerate(("1000.00",) * 3 + ("10.00",))]
    path.write_text("trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount\n" + "\n".join(rows) + "\n")
    return path


def _approved_alike(served: Path, local: Path) -> None:
    """Runs approved on the served store (four eyes test) approved on the local one too: equal stores."""
    runs = [{r["run_id"]: r for r in json.loads(settle("runs", "list", "--format", "json", db=db).stdout)}
            for db in (served, local)]
    for run_id, run in runs[0].items():
        if run["state"] == "approved" and runs[1][run_id]["state"] == "proposed":
            assert settle("approve", run_id, "--by", run["reviewed_by"], db=local).returncode == 0


def test_flags_and_their_review_through_the_server(stores, tmp_path):
    served, local, _ = stores
    _approved_alike(served, local)
    same(("ingest", _thin_trades(tmp_path / "thin.csv")), served, local)
    same(("run", "--year", "2024"), served, local)
    table = same(("flags", "--year", "2024"), served, local)
    assert "THIN_THRESHOLD" in table.stdout and "1 integrity flag(s), 1 unreviewed" in table.stdout
    flags = json.loads(same(("flags", "--year", "2024", "--format", "json"), served, local).stdout)
    assert [(f["code"], f["evidence_trade_ids"], f["review"]) for f in flags] == [("THIN_THRESHOLD", ["THIN-3"], "")]
    same(("flags", "--year", "2019"), served, local, code=1)
    flag = flags[0]["flag_id"]
    review = ("flags", "review", flag, "--by", "审核员 王", "--outcome", "cleared", "--comment", "a real customer")
    said = [settle(*review, db=db) for db in (served, local)]
    assert [r.returncode for r in said] == [0, 0]
    assert [re.sub(r" at \S+ ", " at T ", r.stdout) for r in said] == [f"flag {flag} cleared by 审核员 王 at T (review 1)\n"] * 2
    csv_out = same(("flags", "--year", "2024", "--format", "csv"), served, local).stdout
    assert csv_out.splitlines()[1].endswith(",cleared,审核员 王,a real customer")
    same(("flags", "review", "999", "--by", "x", "--outcome", "confirmed", "--comment", "y"), served, local, code=1)
    same(("flags", "review", flag, "--by", " ", "--outcome", "confirmed", "--comment", "y"), served, local, code=1)


def test_affiliates_explain_through_the_server(stores):
    served, local, _ = stores
    text = same(("affiliates", "explain", "91330105059155760Y", "91330106570820713D"), served, local)
    assert text.stdout.startswith("91330105059155760Y and 91330106570820713D are related when every non-exempt")
    out = same(("affiliates", "explain", "P:0001", "91330110226429547r", "--on", "2024-03-01", "--format", "json"),
               served, local)
    assert json.loads(out.stdout)["equity_threshold"] == "0.25" and json.loads(out.stdout)["steps"][0]["share"] == "0.4"
    same(("affiliates", "explain", "P:0001", "91330110226429547R", "--on", "2030-03-01"), served, local, code=1)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_ledger_export_through_the_server(stores, tmp_path, fmt):
    from ledgers.export import verify_export

    served, local, _ = stores
    outs = [tmp_path / "served" / f"ledger.{fmt}", tmp_path / "local" / f"ledger.{fmt}"]
    done = []
    for db, out in zip((served, local), outs):
        out.parent.mkdir()
        done.append(settle("ledger", "export", "--format", fmt, "--out", out, db=db))
    assert [d.returncode for d in done] == [0, 0] and done[0].stderr == done[1].stderr == ""
    assert done[0].stdout.replace(str(outs[0]), "OUT") == done[1].stdout.replace(str(outs[1]), "OUT")
    assert re.fullmatch(r"exported \d+ ledger entries to OUT\n", done[0].stdout.replace(str(outs[0]), "OUT"))
    import polars as pl

    frames = [pl.read_csv(o, infer_schema_length=0) if fmt == "csv" else pl.read_parquet(o) for o in outs]
    columns = ["entry_id", "run_id", "year", "clause", "beneficiary_id", "dataset_id", "amount", "kind"]
    assert frames[0].height > 0 and frames[0].select(columns).equals(frames[1].select(columns))
    assert verify_export(outs[0]).ok and verify_export(outs[1]).ok


def test_tokens_through_the_server(stores):
    served, local, _ = stores
    created = settle("tokens", "create", "--role", "operator", "--platform", "913301108573022438", "--label", "xh",
                     db=served)
    assert created.returncode == 0, created.stderr
    head, token = created.stdout.splitlines()
    token_id = re.fullmatch(r"created operator token (tok_[0-9a-f]{12}) for 913301108573022438 "
                            r"\(shown once; only its hash is stored\):", head).group(1)
    url = json.loads(endpoint_file(served).read_text())["url"]
    request = urllib.request.Request(f"{url}/v1/uploads", headers={"Authorization": f"Bearer {token}"})
    assert urllib.request.urlopen(request, timeout=10).status == 200
    listed = {t["token_id"]: t for t in json.loads(settle("tokens", "list", "--format", "json", db=served).stdout)}
    assert listed[token_id]["created_by"].startswith("cli:") and listed[token_id]["revoked_at"] is None
    assert listed[token_id]["label"] == "xh" and listed[token_id]["scope_id"] == "913301108573022438"
    table = settle("tokens", "list", db=served).stdout
    assert re.search(rf"^{token_id}\s+operator\s+913301108573022438\s+live\s", table, re.M)
    revoked = settle("tokens", "revoke", token_id, db=served)
    assert revoked.returncode == 0 and revoked.stdout == f"revoked {token_id} (operator 913301108573022438)\n"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    same(("tokens", "revoke", "tok_000000000000"), served, local, code=1)
    same(("tokens", "create", "--role", "owner"), served, local, code=1)


def _bad_rows(path: Path) -> Path:
    """Two good rows and two rejected ones (an amount that is not money; a formula-like id and a bad buyer id)."""
    from settlement.tools.credit_codes import credit_code

    head = "trade_id,platform_id,dataset_id,seller_id,buyer_id,traded_at,amount"
    rows = [f"{tid},913301108573022438,XH-EDU-QA,913301024727064153,{buyer},2024-07-01T10:00:00,{amount}"
            for tid, buyer, amount in (("OK-1", credit_code(710), "5.00"), ("BAD-1", credit_code(720), "abc"),
                                       ("OK-2", credit_code(711), "5.00"), ("=BAD-2", credit_code(721)[:-1] + "0",
                                                                            "5.00"))]
    if path.suffix == ".xlsx":
        import xlsxwriter

        book = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
        sheet = book.add_worksheet()
        for r, line in enumerate([head, *rows]):
            for c, value in enumerate(line.split(",")):
                sheet.write_string(r, c, value)
        book.close()
    else:
        path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("upload, out", [("csv", "csv"), ("csv", "xlsx"), ("xlsx", "csv")])
def test_ingest_errors_out_through_the_server(stores, tmp_path, upload, out):
    """The server keeps the rejected rows in the format --errors-out names; the CLI saves them there: the same
    file and the same report as when the CLI reads the store itself."""
    import polars as pl

    served, local, _ = stores
    file = _bad_rows(tmp_path / f"bad-{upload}-{out}.{upload}")
    outs = [tmp_path / f"served.{out}", tmp_path / f"local.{out}"]
    done = [settle("ingest", file, "--errors-out", o, db=db) for db, o in zip((served, local), outs)]
    assert [d.returncode for d in done] == [2, 2] and done[0].stderr == done[1].stderr == ""
    texts = [d.stdout.replace(str(o), "OUT") for d, o in zip(done, outs)]
    assert texts[0] == texts[1]
    assert texts[0].endswith("  2 rejected rows written to OUT (fix them there and upload that file)\n")
    if out == "csv":
        assert outs[0].read_bytes() == outs[1].read_bytes()
        lines = outs[0].read_text(encoding="utf-8-sig").splitlines()
        assert [line.split(",")[0] for line in lines] == ["trade_id", "BAD-1", "'=BAD-2"]
    else:
        frames = [pl.read_excel(o, infer_schema_length=0) for o in outs]
        assert frames[0].equals(frames[1]) and frames[0]["trade_id"].to_list() == ["BAD-1", "=BAD-2"]
    as_json = [json.loads(settle("ingest", file, "--format", "json", "--errors-out", o, db=db).stdout)
               for db, o in zip((served, local), outs)]
    assert [(j["errors_out_rows"], j["status"]) for j in as_json] == [(2, "rejected")] * 2
    assert as_json[0]["errors_out"] == str(outs[0]) and as_json[1]["errors_out"] == str(outs[1])


def test_ingest_errors_out_without_rejected_rows_through_the_server(stores, tmp_path):
    served, local, _ = stores
    file = tmp_path / "header-only.csv"
    file.write_text("trade_id,platform_id\nx,y\n", encoding="utf-8")
    outs = [tmp_path / "s.csv", tmp_path / "l.csv"]
    done = [settle("ingest", file, "--errors-out", o, db=db) for db, o in zip((served, local), outs)]
    assert [d.returncode for d in done] == [2, 2]
    assert done[0].stdout.replace(str(outs[0]), "OUT") == done[1].stdout.replace(str(outs[1]), "OUT")
    assert done[0].stdout.endswith("  no rejected rows: OUT not written\n".replace("OUT", str(outs[0])))
    assert not outs[0].exists() and not outs[1].exists()
