"""Command-line edge: ``settle``. Every command is registered here, explicitly, in pipeline order.

Owns nothing but parsing and formatting; must not hold business rules. May import any settlement,
ledgers or api module; nothing may import it. ``settle --help`` shows the commands in help panels in
the order a year is settled: setup, inputs, settle, audit, server, tools.
"""

from __future__ import annotations

from settlement.cli import affiliates_cmds, api_cmds, generate_cmds, ingest_cmds, ledger_cmds, settle_cmds
from settlement.cli._app import app, register

SETUP, INPUTS, SETTLE, AUDIT, SERVER, TOOLS = "Setup", "Inputs", "Settle", "Audit", "Server", "Tools"
PANELS = (SETUP, INPUTS, SETTLE, AUDIT, SERVER, TOOLS)

COMMANDS = (
    (SETUP, "init", ingest_cmds.init),
    (INPUTS, "load", ingest_cmds.load_command),
    (INPUTS, "ingest", ingest_cmds.ingest_command),
    (INPUTS, "uploads", ingest_cmds.uploads_app),
    (SETTLE, "run", settle_cmds.run_cmd),
    (SETTLE, "explain", settle_cmds.explain_app),
    (SETTLE, "affiliates", affiliates_cmds.affiliates_app),
    (SETTLE, "payouts", ledger_cmds.payouts_cmd),
    (AUDIT, "ledger", ledger_cmds.ledger_app),
    (SERVER, "serve", api_cmds.serve),
    (SERVER, "tokens", api_cmds.tokens_app),
    (TOOLS, "generate", generate_cmds.generate_cmd),
    (TOOLS, "demo", settle_cmds.demo_cmd),
)

for _panel, _name, _target in COMMANDS:
    register(_panel, _name, _target)


def main() -> None:
    """Entry point of the ``settle`` script; exit codes per CONTRACT (usage errors 64, see ``_app``)."""
    app()
