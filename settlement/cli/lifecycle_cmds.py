"""CLI edge for the settlement lifecycle (CONTRACT "Settlement lifecycle"): `settle runs list`, `settle
approve`, `settle reject`, `settle notice`, `settle object`, `settle resolve-objection`, `settle disburse`,
`settle disbursed`, `settle statement`.

Parses, calls ``settlement.lifecycle`` and prints; holds no rules. Refusals (four eyes, a run not
proposed, unknown ids) come back as ``UserError`` (exit 1).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Callable, TypeVar

import typer

from ledgers.payouts import format_amount
from settlement.cli import render
from settlement.cli._app import DbOption, choices, current_user, fail, opened_store, parent_must_exist
from settlement.cli.dispatch import api, dispatch, store_only
from settlement.cli.remote import Server
from settlement.cli.render import InstructionFormat, NoticeFormat, PrintFormat, StatementFormat

T = TypeVar("T")

runs_app = typer.Typer(no_args_is_help=True, help="Settlement runs and their review state.")

RunId = Annotated[int, typer.Argument(help="run id (settle runs list)")]
YearRequired = Annotated[int, typer.Option("--year", help="settlement year")]
ByRequired = Annotated[str, typer.Option("--by", help="who records this (name or identity)")]
ByDefault = Annotated[str | None, typer.Option("--by", help="who records this (default: cli:<OS user>)")]
OutOption = Annotated[Path, typer.Option("--out", help="file to write")]
Outcome = choices("Outcome", "upheld", "dismissed")


@runs_app.command("list")
def runs_list_cmd(
    year: Annotated[int | None, typer.Option("--year", help="settlement year (default: all)")] = None,
    fmt: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    db: DbOption = None,
) -> None:
    """Every run with who started it, its state (proposed|approved|rejected|unchanged) and its entries."""
    from settlement.lifecycle.review import RUN_COLUMNS, run_records

    records = dispatch(db, remote=api("GET", "/v1/runs", params={"year": year}),  # the server answers these records
                       local=lambda con: run_records(con, year), read_only=True)
    render.print_records(fmt, records, RUN_COLUMNS,
                         lambda: render.records_table(records, RUN_COLUMNS, "Settlement runs", empty="no runs"))


def approve_cmd(
    run_id: RunId,
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
    event = dispatch(
        db, remote=api("POST", f"/v1/runs/{run_id}/approve", by=by, pick="event",
                       json={"comment": comment, "acknowledge_flags": acknowledge_flags}),
        local=lambda con: approve_run(con, run_id, by=by, comment=comment, acknowledge_flags=acknowledge_flags,
                                      key=signing_key))
    typer.echo(f"run {run_id} approved by {by} (record {event}{', signed' if signing_key else ''})")


def reject_cmd(
    run_id: RunId,
    by: ByRequired,
    reason: Annotated[str, typer.Option("--reason", help="why the run is rejected")],
    db: DbOption = None,
) -> None:
    """Reject a proposed run: its entries stay in the ledger, void; the next run proposes again."""
    from settlement.lifecycle.review import reject_run

    event = dispatch(db, remote=api("POST", f"/v1/runs/{run_id}/reject", by=by, json={"reason": reason}, pick="event"),
                     local=lambda con: reject_run(con, run_id, by=by, reason=reason))
    typer.echo(f"run {run_id} rejected by {by} (record {event})")


def _year_step(db: Path | None, year: int, by: str | None, out: Path, path: str, shape: type[T],
               act: Callable[..., T]) -> T:
    """Notice and disburse: check the directory of ``out``, then record the year's step as ``by`` (default
    cli:<OS user>): ``POST path?year=`` through the server, else ``act(con, year, by=)`` on the file."""
    parent_must_exist(out)
    actor = by or current_user()
    return dispatch(db, remote=api("POST", path, params={"year": year}, by=actor, shape=shape),
                    local=lambda con: act(con, year, by=actor))


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

    notice = _year_step(db, year, by, out, "/v1/notices", Notice, publish_notice)
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

    objection_id = dispatch(
        db, remote=api("POST", "/v1/objections", by=by, pick="objection_id", json={
            "year": year, "beneficiary_id": beneficiary, "reason": reason, "dataset_id": dataset}),
        local=lambda con: object_line(con, year, beneficiary, by=by, reason=reason, dataset_id=dataset))
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

    dispatch(db, remote=api("POST", f"/v1/objections/{objection_id}/resolve", by=by, json={"outcome": outcome.value}),
             local=lambda con: resolve_objection(con, objection_id, by=by, outcome=outcome.value))
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

    batch = _year_step(db, year, by, out, "/v1/disbursements", Batch, disburse)
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

    actor, day = by or current_user(), paid_on.date()
    dispatch(db, remote=api("POST", f"/v1/disbursements/{batch_id.strip()}/paid", by=actor,
                            json={"paid_on": day.isoformat()}),
             local=lambda con: confirm_paid(con, batch_id, paid_on=day, by=actor))
    typer.echo(f"batch {batch_id} paid on {day}")


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

    def remote(server: Server) -> None:  # the server renders the file; its bytes are written here
        parent_must_exist(out)
        out.write_bytes(server.call("GET", f"/v1/statements/{beneficiary.strip()}",
                                    params={"year": year, "format": fmt.value}).content)

    dispatch(db, remote=remote, read_only=True,
             local=lambda con: write(statement_document(con, year, beneficiary.strip()), fmt.value, out))
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

    event, fp = dispatch(db, remote=store_only("keys are registered on the store file: stop `settle serve` first"),
                         local=lambda con: register_key(con, name, public_key, by=by or current_user()))
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
