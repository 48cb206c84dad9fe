"""CLI edge for affiliate resolution: `settle affiliates explain ID_A ID_B [--on DATE]` (CONTRACT, P5-P8).

Parses, looks up the equity threshold (a dated policy parameter, P6), calls
``settlement.affiliates.groups.explain_relation`` and prints its text; holds no rules.
"""

from __future__ import annotations

import datetime as dt
import json
from enum import Enum
from typing import Annotated

import typer

from settlement.affiliates.groups import explain_relation
from settlement.cli._app import DbOption, app, fail, opened_store

affiliates_app = typer.Typer(no_args_is_help=True, help="Affiliate relations (P5-P8).")
app.add_typer(affiliates_app, name="affiliates")

THRESHOLD_PARAM = "affiliates.equity_threshold"


class ExplainFormat(str, Enum):
    text = "text"
    json = "json"


def _threshold(on: dt.date | None):
    """The P6 threshold in force on ``on``; without a date, the most recent value of the parameter."""
    from settlement.core import params  # imported here: a broken parameter file must not break other commands

    try:
        loaded = params.load_params()
        if on is not None:
            return loaded.value(THRESHOLD_PARAM, on)
        periods = [p for p in loaded.periods if p.name == THRESHOLD_PARAM]
        if not periods:
            fail(f"the policy parameters define no {THRESHOLD_PARAM}")
        return max(periods, key=lambda p: p.valid_from).value
    except params.ParameterNotInForce as exc:
        fail(f"{exc} (P6): choose a date inside the policy window")
    except params.ParameterFileError as exc:
        fail(f"policy parameter file is invalid: {exc}")


@affiliates_app.command("explain")
def explain_cmd(
    a_id: Annotated[str, typer.Argument(help="credit code or P: person id")],
    b_id: Annotated[str, typer.Argument(help="credit code or P: person id")],
    on: Annotated[
        str | None,
        typer.Option("--on", help="date YYYY-MM-DD (P8 trade-date graph); omitted: every non-exempt record, dates ignored"),
    ] = None,
    fmt: Annotated[ExplainFormat, typer.Option("--format", help="text | json")] = ExplainFormat.text,
    db: DbOption = None,
) -> None:
    """Print the chain of records that makes A and B related, or why the nearest records do not qualify."""
    day = None
    if on is not None:
        try:
            day = dt.date.fromisoformat(on.strip())
        except ValueError:
            fail(f"--on must be a date YYYY-MM-DD, got {on!r}")
    # P4: credit codes are upper-cased and stripped; P: person ids are opaque and kept as given.
    a, b = (x.strip() if x.strip().startswith("P:") else x.strip().upper() for x in (a_id, b_id))
    threshold = _threshold(day)
    with opened_store(db, read_only=False) as con:
        result = explain_relation(con, a, b, on=day, equity_threshold=threshold)
    if fmt is ExplainFormat.json:
        payload = {
            "related": result.related,
            "a_id": result.a_id,
            "b_id": result.b_id,
            "on": None if result.on is None else result.on.isoformat(),
            "equity_threshold": str(threshold),
            "text": result.text,
            "steps": [
                {
                    "record_id": s.record_id,
                    "row_number": s.row_number,
                    "a_id": s.a_id,
                    "b_id": s.b_id,
                    "relation": s.relation,
                    "share": None if s.share is None else str(s.share),
                    "valid_from": None if s.valid_from is None else s.valid_from.isoformat(),
                    "valid_to": None if s.valid_to is None else s.valid_to.isoformat(),
                    "verdict": s.verdict,
                }
                for s in result.steps
            ],
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        typer.echo(result.text)
