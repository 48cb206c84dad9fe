"""CLI edge for the settlement lifecycle (CONTRACT "Settlement lifecycle"): `settle runs list`, `settle
approve`, `settle reject`, `settle notice`, `settle object`, `settle resolve-objection`, `settle disburse`,
`settle disbursed`, `settle statement`.

Parses, calls ``settlement.lifecycle`` and prints; holds no rules. Refusals (four eyes, a run not
proposed, unknown ids) come back as ``UserError`` (exit 1).
"""

from __future__ import annotations

import datetime as dt
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ledgers.payouts import format_amount
from settlement.cli import render
from settlement.cli._app import DbOption, current_user, fail, opened_store, server_for
from settlement.cli.remote import decode
from settlement.cli.render import PrintFormat

runs_app = typer.Typer(no_args_is_help=True, help="Settlement runs and their review state.")

YearRequired = Annotated[int, typer.Option("--year", help="settlement year")]
ByRequired = Annotated[str, typer.Option("--by", help="who records this (name or identity)")]
ByDefault = Annotated[str | None, typer.Option("--by", help="who records this (default: cli:<OS user>)")]
OutOption = Annotated[Path, typer.Option("--out", help="file to write")]


class NoticeFormat(str, Enum):
    csv = "csv"
    xlsx = "xlsx"
    pdf = "pdf"


class StatementFormat(str, Enum):
    xlsx = "xlsx"
    pdf = "pdf"


class InstructionFormat(str, Enum):
    csv = "csv"


class Outcome(str, Enum):
    upheld = "upheld"
    dismissed = "dismissed"


@runs_app.command("list")
def runs_list_cmd(
    year: Annotated[int | None, typer.Option("--year", help="settlement year (default: all)")] = None,
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    db: DbOption = None,
) -> None:
    """Every run with who started it, its state (proposed|approved|rejected|unchanged) and its entries."""
    from settlement.lifecycle.review import runs_list

    server = server_for(db)
    if server is not None:  # the server answers these very records
        records = server.json("GET", "/v1/runs", params={"year": year})
    else:
        with opened_store(db, read_only=True) as con:
            runs = runs_list(con, year)
        records = [{**r, "started_at": r["started_at"].isoformat() if r["started_at"] else None,
                    "reviewed_at": r["reviewed_at"].isoformat() if r["reviewed_at"] else None,
                    "amount": format_amount(r["amount"])} for r in runs]
    columns = ("run_id", "year", "started_by", "state", "entries", "amount", "reviewed_by", "review_note")
    if fmt is PrintFormat.json:
        typer.echo(render.as_json(records))
    elif fmt is PrintFormat.csv:
        typer.echo(render.records_csv(records, columns), nl=False)
    else:
        table = Table(*columns, title="Settlement runs")
        for r in records:
            table.add_row(*("" if r[c] is None else str(r[c]) for c in columns))
        render.console().print(table if records else "no runs")


def approve_cmd(
    run_id: Annotated[int, typer.Argument(help="run id (settle runs list)")],
    by: ByRequired,
    comment: Annotated[str | None, typer.Option("--comment", help="review comment")] = None,
    acknowledge_flags: Annotated[bool, typer.Option("--acknowledge-flags",
                                                    help="the integrity flags of the year were reviewed")] = False,
    db: DbOption = None,
    key: Annotated[Path | None, typer.Option(
        "--key", help="the approver's Ed25519 private key (PEM; never stored): required once keys are registered")
    ] = None,
) -> None:
    """Approve every entry of a proposed run (four eyes: not by the identity that started it), signed with
    the approver's key (settle keys register)."""
    from settlement.lifecycle.review import approve_run, load_signing_key

    signing_key = load_signing_key(key) if key else None

    server = server_for(db)
    if server is not None:
        event = server.json("POST", f"/v1/runs/{run_id}/approve", by=by,
                            json={"comment": comment, "acknowledge_flags": acknowledge_flags})["event"]
    else:
        with opened_store(db) as con:
            event = approve_run(con, run_id, by=by, comment=comment, acknowledge_flags=acknowledge_flags,
                                key=signing_key)
    typer.echo(f"run {run_id} approved by {by} (record {event}{', signed' if signing_key else ''})")


def reject_cmd(
    run_id: Annotated[int, typer.Argument(help="run id (settle runs list)")],
    by: ByRequired,
    reason: Annotated[str, typer.Option("--reason", help="why the run is rejected")],
    db: DbOption = None,
) -> None:
    """Reject a proposed run: its entries stay in the ledger, void; the next run proposes again."""
    from settlement.lifecycle.review import reject_run

    server = server_for(db)
    if server is not None:
        event = server.json("POST", f"/v1/runs/{run_id}/reject", by=by, json={"reason": reason})["event"]
    else:
        with opened_store(db) as con:
            event = reject_run(con, run_id, by=by, reason=reason)
    typer.echo(f"run {run_id} rejected by {by} (record {event})")


def notice_cmd(
    year: YearRequired,
    fmt: Annotated[NoticeFormat, typer.Option("--format", help="csv | xlsx | pdf")],
    out: OutOption,
    by: ByDefault = None,
    db: DbOption = None,
) -> None:
    """Write the public notice list of approved amounts not yet noticed and start their notice period."""
    from settlement.lifecycle.documents import write
    from settlement.lifecycle.notice import Notice, notice_document, publish_notice

    if not out.parent.exists():
        fail(f"directory {out.parent} does not exist")
    server = server_for(db)
    if server is not None:
        notice = decode(Notice, server.json("POST", "/v1/notices", params={"year": year}, by=by or current_user()))
    else:
        with opened_store(db) as con:
            notice = publish_notice(con, year, by=by or current_user())
    write(notice_document(notice), fmt.value, out)
    if notice.notice_id is None:
        typer.echo(f"nothing to notice for {year}: wrote the header only to {out}")
    else:
        typer.echo(f"notice {notice.notice_id}: {len(notice.lines)} lines, published {notice.published_on}, "
                   f"{notice.working_days} working days, disbursable from {notice.payable_from}; wrote {out}")


def object_cmd(
    year: YearRequired,
    beneficiary: Annotated[str, typer.Option("--beneficiary", help="beneficiary credit code")],
    by: ByRequired,
    reason: Annotated[str, typer.Option("--reason", help="what is objected to")],
    dataset: Annotated[str | None, typer.Option("--dataset", help="dataset id (default: every line)")] = None,
    db: DbOption = None,
) -> None:
    """Record an objection to a notice line: it is held back from disbursement until resolved."""
    from settlement.lifecycle.objections import object_line

    server = server_for(db)
    if server is not None:
        objection_id = server.json("POST", "/v1/objections", by=by, json={
            "year": year, "beneficiary_id": beneficiary.strip(), "reason": reason,
            "dataset_id": dataset.strip() if dataset else None})["objection_id"]
    else:
        with opened_store(db) as con:
            objection_id = object_line(con, year, beneficiary.strip(), by=by, reason=reason,
                                       dataset_id=dataset.strip() if dataset else None)
    typer.echo(f"objection {objection_id} recorded: holds {beneficiary}"
               + (f" / {dataset}" if dataset else " (every line)") + f" of {year}")


def resolve_objection_cmd(
    objection_id: Annotated[int, typer.Argument(help="objection id")],
    by: ByRequired,
    outcome: Annotated[Outcome, typer.Option("--outcome", help="upheld | dismissed")],
    db: DbOption = None,
) -> None:
    """Resolve an objection (dismissed: the line is released; upheld: held until a correction is approved)."""
    from settlement.lifecycle.objections import resolve_objection

    server = server_for(db)
    if server is not None:
        server.call("POST", f"/v1/objections/{objection_id}/resolve", by=by, json={"outcome": outcome.value})
    else:
        with opened_store(db) as con:
            resolve_objection(con, objection_id, by=by, outcome=outcome.value)
    typer.echo(f"objection {objection_id} {outcome.value} by {by}")


def disburse_cmd(
    year: YearRequired,
    out: OutOption,
    fmt: Annotated[InstructionFormat, typer.Option("--format", help="csv")] = InstructionFormat.csv,
    by: ByDefault = None,
    db: DbOption = None,
) -> None:
    """Write payment instructions (payments and recoveries) for noticed amounts due; print the batch id last."""
    from settlement.lifecycle.disburse import INSTRUCTION_COLUMNS, Batch, disburse

    if not out.parent.exists():
        fail(f"directory {out.parent} does not exist")
    server = server_for(db)
    if server is not None:
        batch = decode(Batch, server.json("POST", "/v1/disbursements", params={"year": year}, by=by or current_user()))
    else:
        with opened_store(db) as con:
            batch = disburse(con, year, by=by or current_user())
    records = [{**x.__dict__, "amount": format_amount(x.amount)} for x in batch.instructions]
    out.write_text(render.records_csv(records, INSTRUCTION_COLUMNS), encoding="utf-8")
    if batch.batch_id is None:
        typer.echo(f"nothing to disburse for {year}: wrote the header only to {out}")
        return
    typer.echo(f"{len(records)} instructions written to {out}")
    typer.echo(batch.batch_id)


def disbursed_cmd(
    batch_id: Annotated[str, typer.Argument(help="batch id printed by settle disburse")],
    paid_on: Annotated[dt.datetime, typer.Option("--paid-on", formats=["%Y-%m-%d"], help="payment date YYYY-MM-DD")],
    by: ByDefault = None,
    db: DbOption = None,
) -> None:
    """Record the bank's confirmation that a batch was paid."""
    from settlement.lifecycle.disburse import confirm_paid

    server = server_for(db)
    if server is not None:
        server.call("POST", f"/v1/disbursements/{batch_id.strip()}/paid", by=by or current_user(),
                    json={"paid_on": paid_on.date().isoformat()})
    else:
        with opened_store(db) as con:
            confirm_paid(con, batch_id.strip(), paid_on=paid_on.date(), by=by or current_user())
    typer.echo(f"batch {batch_id} paid on {paid_on.date()}")


def statement_cmd(
    year: YearRequired,
    beneficiary: Annotated[str, typer.Option("--beneficiary", help="beneficiary credit code")],
    fmt: Annotated[StatementFormat, typer.Option("--format", help="xlsx | pdf")],
    out: OutOption,
    db: DbOption = None,
) -> None:
    """Write a beneficiary's statement (对账单) of a year: every line from computation to payment."""
    from settlement.lifecycle.documents import write
    from settlement.lifecycle.statement import statement_document

    server = server_for(db)
    if server is not None:
        if not out.parent.exists():
            fail(f"directory {out.parent} does not exist")
        out.write_bytes(server.call("GET", f"/v1/statements/{beneficiary.strip()}",
                                    params={"year": year, "format": fmt.value}).content)
    else:
        with opened_store(db, read_only=True) as con:
            doc = statement_document(con, year, beneficiary.strip())
        write(doc, fmt.value, out)
    typer.echo(f"statement of {beneficiary} for {year} written to {out}")


keys_app = typer.Typer(no_args_is_help=True, help="Approvers' Ed25519 public keys (signed approvals).")


@keys_app.command("generate")
def keys_generate_cmd(
    name: Annotated[str, typer.Argument(help="approver name (settle approve --by)")],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="where to write NAME.key (private) and NAME.pub")],
) -> None:
    """Write a new key pair for NAME (private key mode 0600: keep it off the server; register NAME.pub)."""
    from ledgers.signatures import fingerprint, generate

    if not out_dir.is_dir():
        fail(f"directory {out_dir} does not exist")
    private, public = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    if private.exists() or public.exists():
        fail(f"{private} or {public} exists already: not overwritten")
    raw = generate(private, public)
    typer.echo(f"wrote {private} (private: never copy it into the store) and {public} (fingerprint {fingerprint(raw)})")


@keys_app.command("register")
def keys_register_cmd(
    name: Annotated[str, typer.Argument(help="approver name (settle approve --by)")],
    public_key: Annotated[Path, typer.Option("--public-key", help="the approver's Ed25519 public key (PEM)")],
    by: Annotated[str | None, typer.Option("--by", help="who registers it (default: the OS user)")] = None,
    db: DbOption = None,
) -> None:
    """Register NAME's public key (a hash-chained record, listed in every notice). From then on every
    approval must be signed (settle approve --key)."""
    from settlement.lifecycle.review import register_key

    if server_for(db) is not None:
        fail("keys are registered on the store file: stop `settle serve` first")
    with opened_store(db) as con:
        event, fp = register_key(con, name, public_key, by=by or current_user())
    typer.echo(f"registered key {fp} for {name} (record {event})")


@keys_app.command("list")
def keys_list_cmd(db: DbOption = None) -> None:
    """The key in force per approver: name, fingerprint, registered at, record."""
    with opened_store(db, read_only=True) as con:
        rows = con.execute("SELECT name, fingerprint, registered_at, event_id FROM approver_keys ORDER BY name").fetchall()
    for name, fp, at, event in rows:
        typer.echo(f"{name}\t{fp}\t{at.isoformat()}\trecord {event}")
    if not rows:
        typer.echo("no approver keys registered: approvals are unsigned")
