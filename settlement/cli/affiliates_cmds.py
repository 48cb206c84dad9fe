"""CLI edge for affiliate resolution: `settle affiliates explain ID_A ID_B [--on DATE]` (CONTRACT, P5-P8).

Parses, looks up the equity threshold (a dated policy parameter, P6), calls
``settlement.affiliates.explain.explain_relation`` (on the file, or through `settle serve`'s
`GET /v1/affiliates/explain`, which takes the same threshold: ``settlement.cli.dispatch``) and prints its
text; holds no rules. The explanation only reads the store; it is opened for writing, as it always was, so
an older store is migrated forward first (a read-only open does not migrate).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from settlement.affiliates.records import RelationExplanation
from settlement.cli import render
from settlement.cli._app import DbOption, fail, latest_value, policy_params
from settlement.cli.dispatch import api, dispatch
from settlement.cli.render import ReportFormat
from settlement.core.identifiers import normalise_party_id

affiliates_app = typer.Typer(no_args_is_help=True, help="Affiliate relations (P5-P8).")

THRESHOLD_PARAM = "affiliates.equity_threshold"


def _threshold(on: dt.date | None):
    """The P6 threshold in force on ``on``; without a date, the most recent value of the parameter."""
    from settlement.core.params import ParameterNotInForce

    loaded = policy_params()
    if on is None:
        return latest_value(loaded, THRESHOLD_PARAM)
    try:
        return loaded.value(THRESHOLD_PARAM, on)
    except ParameterNotInForce as exc:
        fail(f"{exc} (P6): choose a date inside the policy window")


@affiliates_app.command("explain")
def explain_cmd(
    a_id: Annotated[str, typer.Argument(help="credit code or P: person id")],
    b_id: Annotated[str, typer.Argument(help="credit code or P: person id")],
    on: Annotated[
        str | None,
        typer.Option("--on", help="date YYYY-MM-DD (P8 trade-date graph); omitted: every non-exempt record, dates ignored"),
    ] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="text | json")] = ReportFormat.text,
    db: DbOption = None,
) -> None:
    """Print the chain of records that makes A and B related, or why the nearest records do not qualify."""
    day = None
    if on is not None:
        try:
            day = dt.date.fromisoformat(on.strip())
        except ValueError:
            fail(f"--on must be a date YYYY-MM-DD, got {on!r}")
    a, b = normalise_party_id(a_id), normalise_party_id(b_id)  # P4
    threshold = _threshold(day)
    query = {"a": a, "b": b, "on": None if day is None else day.isoformat()}
    result = dispatch(db, remote=api("GET", "/v1/affiliates/explain", params=query, shape=RelationExplanation),
                      local=lambda con: _explain_relation(con, a, b, on=day, equity_threshold=threshold))
    if fmt is ReportFormat.json:
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
        typer.echo(render.as_json(payload))
    else:
        typer.echo(result.text)


def _explain_relation(con, *args, **kwargs) -> RelationExplanation:
    # imported when used: the record-path search pulls in scipy and polars (~1 s), which every other
    # command's start would pay (`settle --version` took 2.0 s)
    from settlement.affiliates.explain import explain_relation
    return explain_relation(con, *args, **kwargs)
