"""`settle init`, `settle ingest`, `settle uploads list|retract`, `settle load KIND FILE`: parse, call, format."""

from __future__ import annotations

import threading
from dataclasses import fields
from pathlib import Path
from typing import Annotated

import typer

from settlement.cli import render
from settlement.cli._app import EXIT_REJECTED, DbOption, choices, current_user, db_path, fail, stdout_is_tty
from settlement.cli.dispatch import api, dispatch
from settlement.cli.remote import Server, decode, report_of
from settlement.cli.render import PrintFormat, ReportFormat
from settlement.core import store
from settlement.inputs import errors_out as errors_out_module
from settlement.inputs import ingest, registry

uploads_app = typer.Typer(no_args_is_help=True, help="List and retract trade uploads.")

RegistryKind = choices("RegistryKind", "datasets", "platforms", "affiliations", "prior-awards")


def init(db: DbOption = None) -> None:
    """Create the database file (if missing) and migrate it to the current schema."""
    path = db_path(db)
    version, applied = store.init(path)
    typer.echo(f"{path}: schema version {version}" + (f" (applied {', '.join(map(str, applied))})" if applied else ""))


def _check_readable(file: Path) -> None:
    if not file.exists():
        fail(f"no such file: {file}")
    if not file.is_file():
        fail(f"not a file: {file}")


GROUP_ROWS_SHOWN = 5


def _format_groups(lines: list[str], errors) -> None:
    """Identical (column, reason) errors as one line each, with the count and the first row numbers."""
    groups: dict[tuple, list] = {}
    for error in errors:
        groups.setdefault((error.column, error.reason), []).append(error.row_number)
    if len(groups) == len(errors):
        return  # every error is different: the full list says it all
    lines.append("  errors by kind:")
    for (column, reason), rows in sorted(groups.items(), key=lambda g: (-len(g[1]), g[1][0] or 0)):
        shown = ", ".join(str(r) for r in rows[:GROUP_ROWS_SHOWN] if r is not None)
        more = ", ..." if len(rows) > GROUP_ROWS_SHOWN else ""
        word = "row" if len(rows) == 1 else "rows"
        where = f" ({word} {shown}{more})" if shown else ""
        lines.append(f"    {column or 'file'}: {reason}: {len(rows)} {word}{where}")
    lines.append("  every error:")


def _format_errors(lines: list[str], errors, total: int) -> None:
    _format_groups(lines, errors)
    for error in errors:
        where = f"row {error.row_number}" if error.row_number is not None else "file"
        column = f", column {error.column}" if error.column else ""
        value = f", value {error.value!r}" if error.value is not None else ""
        lines.append(f"  {where}{column}{value}: {error.reason}")
    if total > len(errors):
        lines.append(f"  ... and {total - len(errors)} more errors (all kept in rejected_rows)")


def format_upload_report(report: ingest.UploadReport) -> str:
    if report.status == "duplicate":
        return (f"{report.file_name}: same bytes as upload {report.duplicate_of} (sha256 {report.sha256[:12]}...): "
                "nothing stored")
    lines = [
        f"upload {report.upload_id}: {report.file_name} ({report.file_format}, {report.bytes} bytes): {report.status}",
        f"  rows read {report.rows_read}, stored {report.rows_stored}, duplicate {report.rows_duplicate}, "
        f"rejected {report.rows_rejected}",
    ]
    if report.file_error:
        lines.append(f"  file rejected: {report.file_error}")
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    if report.status == "rejected" and report.rows_rejected:
        lines.append("  nothing stored: fix the rows below, or use --accept-valid to store the valid rows")
    _format_errors(lines, report.errors, report.errors_total)
    return "\n".join(lines)


def _progress_printer(con):
    """On a terminal: a rich bar with the stage name and DuckDB's progress of the running statement,
    polled from a thread. Not a TTY: nothing at all (scripts and CI get the report only)."""
    if not stdout_is_tty():
        return None, lambda: None
    from rich.progress import BarColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn

    # DuckDB tracks statement progress only with its progress bar on; we poll it instead of printing it.
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false; SET progress_bar_time = 0")
    progress = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                        transient=True)
    task = progress.add_task("starting", total=100)
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.2):
            percent = con.query_progress()
            if percent >= 0:
                progress.update(task, completed=percent)

    def step(stage: str) -> None:
        progress.update(task, description=stage, completed=0)

    def stop() -> None:
        done.set()
        poller.join()
        progress.stop()

    progress.start()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    return step, stop


def ingest_command(
    file: Annotated[Path, typer.Argument(help="Trade file: .csv, .parquet, .jsonl or .xlsx")],
    accept_valid: Annotated[bool, typer.Option("--accept-valid", help="Store valid rows, keep bad rows aside")] = False,
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
    errors_out: Annotated[Path | None, typer.Option(
        "--errors-out", help="Write the rejected rows, in the file's own columns plus error_column and "
                             "error_reason, to this .csv or .xlsx")] = None,
    db: DbOption = None,
) -> None:
    """Upload one trade file; prints the report. Exit 2 when the file was rejected."""
    _check_readable(file)

    def remote(server: Server) -> tuple[ingest.UploadReport, int | None]:
        # The server keeps the rejected rows (as --errors-out names them: .xlsx or CSV) and links them
        wanted = None if errors_out is None else "xlsx" if errors_out.suffix.lower() == ".xlsx" else "csv"
        response = server.upload("/v1/local-uploads", file, accept=(422,),
                                 params={"accept_valid": accept_valid, "rejected_rows_format": wanted})
        body = report_of(response)
        report = decode(ingest.UploadReport, body)
        if errors_out is None or not report.rows_rejected:
            return report, None
        return report, _download_rejected_rows(server, report.upload_id, body.get("rejected_rows_url"), errors_out)

    report, written = dispatch(db, remote=remote,
                               local=lambda con: _ingest_locally(con, file, accept_valid, errors_out))
    _print_upload(report, format, errors_out, written)
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


def _ingest_locally(con, file: Path, accept_valid: bool,
                    errors_out: Path | None) -> tuple[ingest.UploadReport, int | None]:
    """The upload on the opened store, with a progress bar on a terminal; the rejected rows to ``errors_out``."""
    step, stop = _progress_printer(con)
    try:
        report = ingest.ingest_file(con, file, uploaded_by=current_user(), accept_valid=accept_valid, progress=step)
    finally:
        stop()
    written = None
    if errors_out is not None and report.rows_rejected:
        written = errors_out_module.write_rejected_rows(con, report.upload_id, file, errors_out)
    return report, written


def _download_rejected_rows(server: Server, upload_id: int, url: str | None, out: Path) -> int:
    """Save the rejected rows the server kept to ``out``; the number of rows in them, as the local write says."""
    if url is None:
        fail(f"the server kept no rejected rows of upload {upload_id} (it could not read the file again)")
    content = server.call("GET", url).content
    out.write_bytes(content)
    if out.suffix.lower() == ".xlsx":
        import polars as pl

        return pl.read_excel(out, sheet_id=1, infer_schema_length=0).height
    import csv
    import io

    return sum(1 for _ in csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))) - 1  # the header


def _print_upload(report: ingest.UploadReport, format: ReportFormat, errors_out: Path | None, written) -> None:
    if format is ReportFormat.json:
        typer.echo(render.as_json(report.to_json_dict() | (
            {"errors_out": str(errors_out), "errors_out_rows": written} if written is not None else {})))
    else:
        typer.echo(format_upload_report(report))
        if written is not None:
            typer.echo(f"  {written} rejected rows written to {errors_out} (fix them there and upload that file)")
        elif errors_out is not None:
            typer.echo(f"  no rejected rows: {errors_out} not written")


@uploads_app.command(name="list")
def uploads_list(
    format: Annotated[PrintFormat, typer.Option("--format", help="table | csv | json")] = PrintFormat.table,
    db: DbOption = None,
) -> None:
    """Every upload with its status and row counts."""
    uploads = dispatch(db, remote=api("GET", "/v1/uploads", shape=list[ingest.UploadSummary]),
                       local=ingest.list_uploads, read_only=True)
    records = [u.__dict__ | {"platform_ids": list(u.platform_ids)} for u in uploads]
    render.print_records(format, records, [f.name for f in fields(ingest.UploadSummary)],
                         lambda: render.uploads_table(uploads))


@uploads_app.command(name="retract")
def uploads_retract(upload_id: Annotated[int, typer.Argument(help="Upload id")], db: DbOption = None) -> None:
    """Retract an upload: its trades stay stored, marked retracted, and count for nothing (P9)."""
    # an unknown or retracted upload: UserError, exit 1 (settlement.cli._app)
    summary = dispatch(db, remote=api("POST", f"/v1/uploads/{upload_id}/retract", shape=ingest.UploadSummary),
                       local=lambda con: ingest.retract_upload(con, upload_id, by=current_user()))
    typer.echo(f"upload {summary.id} ({summary.file_name}) retracted: {summary.rows_stored} trades no longer count")


def format_load_report(report: registry.LoadReport) -> str:
    if report.status == "unchanged":
        return f"{report.kind}: {report.file_name} is the same file as load {report.unchanged_since}: nothing loaded"
    if report.status == "loaded":
        lines = [f"{report.kind}: load {report.load_id}: {report.rows_loaded} rows from {report.file_name}"]
    elif report.file_error:  # the whole file refused: no row was read, say why instead of "0 of 0 rows"
        lines = [f"{report.kind}: {report.file_name} rejected, nothing loaded: {report.file_error}"]
        lines.extend(f"  warning: {warning}" for warning in report.warnings)
        return "\n".join(lines)
    else:
        lines = [f"{report.kind}: {report.file_name} rejected, nothing loaded "
                 f"({report.rows_rejected} of {report.rows_read} rows have errors)"]
    lines.extend(f"  warning: {warning}" for warning in report.warnings)
    _format_errors(lines, report.errors, report.errors_total)
    return "\n".join(lines)


def load_command(
    kind: Annotated[RegistryKind, typer.Argument(help="datasets | platforms | affiliations | prior-awards")],
    file: Annotated[Path, typer.Argument(help="CSV file per CONTRACT")],
    format: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
    db: DbOption = None,
) -> None:
    """Load a registry or relation file (earlier versions are kept for audit). Exit 2 when rejected."""
    _check_readable(file)
    report = dispatch(
        db, remote=lambda server: decode(registry.LoadReport, report_of(server.upload(
            f"/v1/registries/{kind.value}", file, accept=(422,)))),
        local=lambda con: registry.load_registry(con, kind.value.replace("-", "_"), file, loaded_by=current_user()))
    if format is ReportFormat.json:
        typer.echo(render.as_json(report.to_json_dict()))
    else:
        typer.echo(format_load_report(report))
    if report.rejected:
        raise typer.Exit(EXIT_REJECTED)


