"""The map stays true (issue 9): every module or function docs/architecture.md names in backticks exists, and
every CLI command and regulator table of the contract is documented (the Datasette habit)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"`((?:settlement|ledgers|api)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("doc", ["docs/architecture.md", "docs/lifecycle.md", "docs/integrity.md", "docs/scale.md"])
def test_every_named_module_and_function_exists(doc):
    path = ROOT / doc
    if not path.exists():
        pytest.fail(f"{doc} is missing")
    names = sorted(set(NAME.findall(path.read_text(encoding="utf-8"))))
    assert [n for n in names if not _resolves(n)] == []


def test_every_cli_command_is_in_the_contract_docs():
    from settlement.cli import PIPELINE

    contract = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
    assert [name for panel in PIPELINE.values() for name in panel if f"settle {name}" not in contract] == []
