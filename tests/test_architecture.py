"""Architecture rules as checks (issue 9 item 6): import contracts, lint, and the size of modules and functions.

- import-linter contracts in pyproject.toml ([tool.importlinter]): settlement never imports api; the ledger
  never imports the clause code; core imports nothing above it; the stages do not import later stages; the
  two edges (settlement.cli, api) import the core, never each other;
- ruff with the rules of pyproject.toml ([tool.ruff]);
- no module over 400 lines and no function over 80 lines in settlement/, ledgers/ and api/.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_import_contracts_hold():
    done = _run("lint-imports")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_ruff_finds_nothing():
    done = _run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-1000:]


def _sources():
    for package in ("settlement", "ledgers", "api"):
        yield from sorted((ROOT / package).rglob("*.py"))


def test_no_module_over_400_lines_and_no_function_over_80():
    too_long = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        name = path.relative_to(ROOT)
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{name}:{node.lineno} {node.name}(): {length} lines")
    assert too_long == []
