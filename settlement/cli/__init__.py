"""Command-line edge: ``settle``. Every command is registered here, explicitly, in pipeline order.

Owns nothing but parsing and formatting; must not hold business rules. May import any settlement,
ledgers or api module; nothing may import it. ``settle --help`` shows the commands in help panels in
the order a year is settled: setup, inputs, settle, audit, server, tools.
"""

from __future__ import annotations

from settlement.cli import (affiliates_cmds, api_cmds, flags_cmds, generate_cmds, ingest_cmds, lake_cmds,
                            ledger_cmds, lifecycle_cmds, settle_cmds)
from settlement.cli._app import app, register

# Help panel → its commands, in the order a year is settled (dicts keep this order, so does ``settle -h``).
PIPELINE = {
    "Setup": {"init": ingest_cmds.init},
    "Inputs": {"load": ingest_cmds.load_command, "ingest": ingest_cmds.ingest_command,
               "uploads": ingest_cmds.uploads_app},
    "Settle": {"run": settle_cmds.run_cmd, "explain": settle_cmds.explain_app,
               "affiliates": affiliates_cmds.affiliates_app, "payouts": ledger_cmds.payouts_cmd,
               "runs": lifecycle_cmds.runs_app, "keys": lifecycle_cmds.keys_app, "approve": lifecycle_cmds.approve_cmd,
               "reject": lifecycle_cmds.reject_cmd, "notice": lifecycle_cmds.notice_cmd,
               "object": lifecycle_cmds.object_cmd, "resolve-objection": lifecycle_cmds.resolve_objection_cmd,
               "disburse": lifecycle_cmds.disburse_cmd, "disbursed": lifecycle_cmds.disbursed_cmd},
    "Audit": {"ledger": ledger_cmds.ledger_app, "flags": flags_cmds.flags_app,
              "statement": lifecycle_cmds.statement_cmd},
    "Server": {"serve": api_cmds.serve, "tokens": api_cmds.tokens_app},
    "Tools": {"generate": generate_cmds.generate_cmd, "demo": settle_cmds.demo_cmd,
              "export-lake": lake_cmds.export_lake_cmd},
}

for _panel, _commands in PIPELINE.items():
    for _name, _target in _commands.items():
        register(_panel, _name, _target)


def main() -> None:
    """Entry point of the ``settle`` script; exit codes per CONTRACT (usage errors 64, see ``_app``)."""
    app()
