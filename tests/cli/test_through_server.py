"""One door while the server runs (issue 11 item 6): with a REAL `settle serve` process on a store, the other
`settle` commands on that store go through its API and print exactly what they print without a server
(compared with a second store driven locally); a stale endpoint file is detected and removed; the endpoint
file is 0600 and a group/world-readable one is refused."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
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
