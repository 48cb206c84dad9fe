"""`make bench`: the long hunts the test suite runs only briefly, then the size benchmarks at small scale.

Property tests and state machines run with bounded examples inside `make test`; here they run longer
(environment variables each test documents). The size benchmarks print numbers and ratios against a bare
baseline measured in the same run; their full-size commands (10M trades, 1M parties) are in BENCHMARKS.md
and take tens of minutes on 2 cores, so this runner uses small sizes unless --full is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

LONG_HUNTS = [
    # (what, environment, pytest target)
    ("settlement state machine vs the reference model", {"SETTLE_SM_EXAMPLES": "200"},
     "tests/clauses/test_state_machine.py"),
    ("no owner/operator answer names another tenant", {"SETTLE_SCOPE_EXAMPLES": "200"},
     "tests/api/test_scope_property.py"),
    ("SIGKILL at random points of load, ingest, serve upload and run", {"SETTLE_CRASH_POINTS": "20"},
     "tests/tamper/test_crash_matrix.py"),
]

SIZE_BENCHES = [
    ["bench/bench_settlement.py", "--trades", "1000000", "--parties", "10000", "--relations", "20000"],
    ["bench/bench_affiliates.py", "--parties", "100000", "--records", "200000", "--pairs", "100000"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-hunts", action="store_true", help="only the size benchmarks")
    parser.add_argument("--skip-sizes", action="store_true", help="only the long property hunts")
    args = parser.parse_args()
    failed = []
    if not args.skip_hunts:
        for what, env, target in LONG_HUNTS:
            print(f"== {what}: {' '.join(f'{k}={v}' for k, v in env.items())} pytest {target}", flush=True)
            done = subprocess.run([PY, "-m", "pytest", "-q", target], cwd=ROOT, env={**os.environ, **env}, check=False)
            if done.returncode:
                failed.append(target)
    if not args.skip_sizes:
        for bench in SIZE_BENCHES:
            if not (ROOT / bench[0]).exists():
                continue
            print(f"== {' '.join(bench)}", flush=True)
            if subprocess.run([PY, *bench], cwd=ROOT, check=False).returncode:
                failed.append(bench[0])
    print("failed: " + ", ".join(failed) if failed else "all benchmarks and hunts ran")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
