"""Command-line edge: ``settle``. Each sibling module registers its commands on ``app``.

Owns nothing but parsing and formatting; must not hold business rules. May import any settlement,
ledgers or api module; nothing may import it.
"""

from __future__ import annotations

import importlib
import pkgutil

from settlement.cli._app import app

# Register every command module in this package (each area keeps its own file).
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cmds")):
    importlib.import_module(f"{__name__}.{_module}")


def main() -> None:
    app()
