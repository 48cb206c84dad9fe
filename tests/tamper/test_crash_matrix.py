"""Issue 15 "Done when": SIGKILL at random points of `settle load`, `settle serve` receiving an upload and
`settle run` leaves a store that verifies, holds all or none of the interrupted step, and settles to exactly
the payouts of an uninterrupted store (sample_trades/expected/payouts.csv, worked out by hand).

The sample exchange is split into a pipeline: base (platforms, datasets, prior awards, five trade files),
then the step under test and the steps after it: `settle load affiliations`, the upload of
trades_xihu_2025_2026.csv (by `settle ingest`, or to `POST /v1/uploads` of a live `settle serve`), `settle
run` (every year). Each
step runs in a child process that prints "go" once its imports are done; the child is killed after a
seeded random delay over the step's own duration (measured in-process when the fixture builds the
pipeline), so the points fall inside the step rather than in Python's start-up. `make test` runs
CRASH_POINTS points per step (default 2); `SETTLE_CRASH_POINTS=N` runs N (bench/run_all.py: 20).
Ingest alone is also covered by tests/inputs/test_ingest_crash.py (kills at named stages).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ledgers import ledger
from settlement.access import tokens
from settlement.core import store
from settlement.core.params import load_params
from settlement.inputs import ingest, registry
from settlement.run import settle_all
from settlement.tools.demo import trade_files
from tests.support.live_server import start_server

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_trades"
EXPECTED = (SAMPLE / "expected" / "payouts.csv").read_text(encoding="utf-8")
UPLOAD = SAMPLE / "trades_xihu_2025_2026.csv"
UPLOAD_PLATFORM = "913301108573022438"  # PA, the platform of every row of UPLOAD
POINTS = int(os.environ.get("SETTLE_CRASH_POINTS", "2"))
SEED = 15
PARAMS = load_params()

CHILD = textwrap.dedent(
    """
    import sys
    from settlement.cli import main
    print("go", flush=True)
    sys.argv = ["settle", *sys.argv[1:]]
    main()
    """
)

# What one step changes, as counts: after a crash the store must show the state before the step or the
# state after it, never a mixture. A run is one transaction per year, so its state is per year.
STATE_SQL = {
    "load": """SELECT (SELECT count(*) FROM registry_loads), (SELECT count(*) FROM affiliation_versions),
                      (SELECT count(*) FROM input_digests)""",
    "upload": """SELECT (SELECT count(*) FROM uploads), (SELECT count(*) FROM trade_rows),
                       (SELECT count(*) FROM input_digests)""",
    "run": """SELECT r.year, count(*), sum(r.entries_appended), sum(r.targets_count),
                     (SELECT count(*) FROM ledger_entries e WHERE e.year = r.year),
                     (SELECT coalesce(sum(amount), 0) FROM ledger_entries e WHERE e.year = r.year)
              FROM settlement_runs r GROUP BY r.year ORDER BY r.year""",
}


def _load_affiliations(con) -> None:
    report = registry.load_registry(con, "affiliations", SAMPLE / "affiliations.csv", loaded_by="crash-test")
    assert report.status == "loaded", report


def _upload(con) -> None:
    report = ingest.ingest_file(con, UPLOAD, uploaded_by="crash-test")
    assert report.status == "stored", report


def _run(con) -> None:
    settle_all(con, params=PARAMS, started_by="crash-test")


STEPS = {"load": _load_affiliations, "upload": _upload, "run": _run}
ORDER = ("load", "upload", "run")


@dataclass(frozen=True)
class Pipeline:
    before: dict[str, Path]  # a copy of the store just before each step
    state_before: dict[str, list[tuple]]
    state_after: dict[str, list[tuple]]
    seconds: dict[str, float]  # each step's duration in-process, opening and closing the store included
    token: str  # operator token of UPLOAD's platform


def _state(con, step: str) -> list[tuple]:
    return con.execute(STATE_SQL[step]).fetchall()


def _copy(db: Path, to: Path) -> Path:
    shutil.copyfile(db, to)
    return to


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Pipeline:
    """The uninterrupted pipeline, keeping a copy of the store before each step and its duration."""
    folder = tmp_path_factory.mktemp("crash-matrix")
    db = folder / "base.duckdb"
    store.init(db)
    con = store.open_store(db)
    for kind in ("platforms", "datasets", "prior_awards"):
        assert registry.load_registry(con, kind, SAMPLE / f"{kind}.csv", loaded_by="crash-test").status == "loaded"
    for path in trade_files(SAMPLE):
        if path != UPLOAD:
            assert ingest.ingest_file(con, path, uploaded_by="crash-test").status == "stored", path
    token = tokens.create_token(con, "operator", scope_id=UPLOAD_PLATFORM, created_by="crash-test").token
    before, state_before, state_after, seconds = {}, {}, {}, {}
    for step in ORDER:
        con.execute("CHECKPOINT")
        con.close()
        before[step] = _copy(db, folder / f"before-{step}.duckdb")
        started = time.monotonic()  # what the child does after "go": open the store, the step, close it
        con = store.open_store(db)
        state_before[step] = _state(con, step)
        STEPS[step](con)
        state_after[step] = _state(con, step)
        con.close()
        seconds[step] = time.monotonic() - started
        con = store.open_store(db)
    assert ledger.payouts_csv(ledger.payouts(con)) == EXPECTED  # the uninterrupted store pays as worked out
    con.close()
    return Pipeline(before, state_before, state_after, seconds, token)


def _kill_cli(db: Path, args: list[str], delay: float) -> bool:
    """Run ``settle ARGS --db DB`` as a child, SIGKILL it ``delay`` s after "go"; True if it died by the kill."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args, "--db", str(db)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)
    assert child.stdout.readline().strip() == "go"
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    out = child.stdout.read()
    child.wait(timeout=60)
    assert child.returncode in (0, -signal.SIGKILL), out  # finished cleanly before the kill, or killed
    return child.returncode == -signal.SIGKILL


def _kill_server(db: Path, token: str, delay: float) -> bool:
    """Start `settle serve`, POST UPLOAD, SIGKILL the server ``delay`` s after the request went out."""
    server = start_server(db)
    answers: list[int] = []

    def post() -> None:
        try:
            with UPLOAD.open("rb") as f:
                answers.append(httpx.post(server.url + "/v1/uploads", headers={"Authorization": f"Bearer {token}"},
                                          files={"file": (UPLOAD.name, f, "text/csv")}, timeout=60).status_code)
        except httpx.HTTPError:
            answers.append(0)  # the server died under the request

    sender = threading.Thread(target=post)
    sender.start()
    time.sleep(delay)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=60)
    sender.join(timeout=60)
    assert answers in ([0], [201]), answers
    return answers == [0]


def _finish_and_compare(db: Path, step: str, pipeline: Pipeline) -> str:
    """After the kill: verify ok, all or none of the step, then the rest of the pipeline pays as expected.
    Returns what the kill left: "none", "all" or (a run) "years Y.." committed before it."""
    con = store.open_store(db)  # the WAL is replayed or discarded
    try:
        result = ledger.verify(con)
        assert result.ok, result.message
        state = _state(con, step)
        if step == "run":  # per year: that year's run committed whole, or not at all
            done = dict((row[0], row) for row in pipeline.state_after[step])
            assert all(row == done[row[0]] for row in state), (state, done)
        else:
            assert state in (pipeline.state_before[step], pipeline.state_after[step]), state
        left = ("all" if state == pipeline.state_after[step] else "none" if state == pipeline.state_before[step]
                else "years " + ",".join(str(row[0]) for row in state))
        if left != "all":
            STEPS[step](con)
        for later in ORDER[ORDER.index(step) + 1:]:
            STEPS[later](con)
        assert ledger.verify(con).ok
        assert ledger.payouts_csv(ledger.payouts(con)) == EXPECTED
    finally:
        con.close()
    return left


def _points(step: str, pipeline: Pipeline, seconds: float | None = None) -> list[float]:
    """Seeded delays over the step: twice its duration (in-process unless given) plus 0.5 s for the CLI's
    own work, one point in each of POINTS equal slices, so even two points reach early and late."""
    rng = random.Random(f"{SEED}-{step}")
    window = (pipeline.seconds[step] if seconds is None else seconds) * 2 + 0.5
    return [window * (i + rng.random()) / POINTS for i in range(POINTS)]


CLI_STEPS = {"load": ("load", ["load", "affiliations", str(SAMPLE / "affiliations.csv")]),
             "ingest": ("upload", ["ingest", str(UPLOAD)]), "run": ("run", ["run"])}


@pytest.mark.parametrize("command", list(CLI_STEPS))
def test_sigkill_during_a_cli_step(pipeline, tmp_path, command) -> None:
    step, args = CLI_STEPS[command]
    outcomes = []
    for i, delay in enumerate(_points(step, pipeline)):
        db = _copy(pipeline.before[step], tmp_path / f"{step}-{i}.duckdb")
        killed = _kill_cli(db, args, delay)
        outcomes.append(f"{delay:.2f}s:{'killed' if killed else 'finished'}/{_finish_and_compare(db, step, pipeline)}")
    print(f"settle {command}: step {pipeline.seconds[step]:.2f} s in-process; {' '.join(outcomes)}")


def _served_upload_seconds(pipeline: Pipeline, db: Path) -> float:
    """How long `settle serve` takes to answer the upload (spooling, ingest in its worker thread) here."""
    server = start_server(db)
    try:
        started = time.monotonic()
        with UPLOAD.open("rb") as f:
            answer = httpx.post(server.url + "/v1/uploads", headers={"Authorization": f"Bearer {pipeline.token}"},
                                files={"file": (UPLOAD.name, f, "text/csv")}, timeout=60)
        assert answer.status_code == 201, answer.text
        return time.monotonic() - started
    finally:
        server.stop()


def test_sigkill_of_the_server_during_an_upload(pipeline, tmp_path) -> None:
    served = _served_upload_seconds(pipeline, _copy(pipeline.before["upload"], tmp_path / "serve-timing.duckdb"))
    outcomes = []
    for i, delay in enumerate(_points("upload", pipeline, seconds=served)):
        db = _copy(pipeline.before["upload"], tmp_path / f"serve-{i}.duckdb")
        killed = _kill_server(db, pipeline.token, delay)
        if i == 0:  # the CLI after a killed server: the stale endpoint file is set aside, verify reads the file
            done = subprocess.run([str(Path(sys.executable).with_name("settle")), "ledger", "verify", "--db", str(db)],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
        outcomes.append(f"{delay:.2f}s:{'killed' if killed else 'answered'}/{_finish_and_compare(db, 'upload', pipeline)}")
    print(f"settle serve: upload answered in {served:.2f} s; {' '.join(outcomes)}")
