"""Operator pages: upload by file picker (or drag-and-drop) with the report rendered and its rejected rows
downloadable, the platform's uploads with status, retraction with a confirmation step, the platform's
clause-7 volume with exclusions by reason, its payouts.

The upload is the API's: ``api.upload_stream.spool_upload`` then ``settlement.inputs.ingest.ingest_file``
with ``platform_scope`` = the operator's platform. Uploads are listed, shown and retracted through
``settlement.access.scope`` (another platform's upload is a 404 page like a missing one). Must not import
the other page modules.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from contextlib import closing
from functools import partial

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.console import queries
from api.console.web import Viewer, check_csrf, error_page, lang_of, page, to_login, viewer, year_arg
from api.console import i18n
from api.state import get_state
from api.upload_stream import BadUpload, UploadTooLarge, spool_upload
from settlement import explain
from settlement.access import scope as access
from settlement.core.errors import UserError
from settlement.inputs import errors_out, ingest

router = APIRouter(include_in_schema=False)
REPORT_KEY = "last_upload_report"


def _platform_view(con, who: Viewer, year: int | None) -> dict:
    years = queries.run_years(con)
    pid = who.scope.scope_id
    year = year if year is not None else queries.default_year(con, years, platform_id=pid)
    ds_names, pf_names = queries.names(con)
    view = {"years": years, "year": year, "dataset_names": ds_names, "platform_names": pf_names, "x": None,
            "volume_by_reason": [], "provisional": None}
    if year is not None and queries.last_run(con, year) is not None:
        try:
            x = explain.explain_platform(con, pid, year, limit=50)
        except UserError:  # a platform with no registry entry and no trade yet
            x = None
        if x is not None:
            view["x"] = x
            view["volume_by_reason"] = queries.excluded_volume(con, x.run_id, clause=7, platform_id=pid)
        view["provisional"] = queries.provisional(con, year, platform_id=pid)
    view["payouts"] = access.visible_payouts(con, who.scope, year).to_dicts() if year else []
    view["uploads"] = list(reversed(access.visible_uploads(con, who.scope)))
    return view


def operator_home(request: Request, who: Viewer):
    state = get_state(request)
    with closing(state.cursor()) as cur:
        view = _platform_view(cur, who, year_arg(request, [], None))
    report = who.session.data.get(REPORT_KEY)
    groups = Counter(e.reason for e in report.errors) if report is not None else Counter()
    return page(request, "operator.html", who=who, v=view, report=report, error_groups=groups.most_common(),
                scope_name=view["platform_names"].get(who.scope.scope_id, ""))


def _ingest(state, path, file_name: str, who: Viewer) -> ingest.UploadReport:
    with closing(state.cursor()) as cur:
        report = ingest.ingest_file(cur, path, file_name=file_name, uploaded_by=who.token.who, accept_valid=False,
                                    platform_scope=who.scope.scope_id)
        # the operator gets its own rows back to fix (issue 10 item 4)
        errors_out.keep_rejected_rows(cur, report, path, state.settings.rejected_rows_dir())
        return report


@router.post("/upload")
async def upload(request: Request):
    """Multipart body streamed to disk unparsed (so the CSRF token rides in the action URL), then ingested
    exactly as `POST /v1/uploads` does; the report is kept in the session and shown on the main page."""
    who = viewer(request)
    if who is None:
        return to_login(request)
    if who.scope.role != "operator":
        return error_page(request, 403, "uploads are sent by a platform's operator", who)
    if not check_csrf(who, request.query_params.get("csrf")):
        return error_page(request, 403, i18n.Tr(lang_of(request))("bad_csrf"), who)
    state = get_state(request)
    settings = state.settings
    try:
        spooled = await spool_upload(request.headers.get("content-type"), request.stream(),
                                     spool_root=settings.resolved_upload_dir(), max_bytes=settings.upload_max_bytes)
    except UploadTooLarge as exc:
        return error_page(request, 413, str(exc), who)
    except BadUpload as exc:
        return error_page(request, 422, str(exc), who)
    try:
        report = await anyio.to_thread.run_sync(partial(_ingest, state, spooled.path, spooled.file_name, who))
    finally:
        spooled.remove()
    if report.status in ("stored", "partial"):
        state.data_changed()
    who.session.data[REPORT_KEY] = report
    return RedirectResponse("/#upload-report", status_code=303)


@router.get("/upload/rejected.csv")
def rejected_rows(request: Request):
    who = viewer(request)
    if who is None:
        return to_login(request)
    report = who.session.data.get(REPORT_KEY)
    if report is None:
        return error_page(request, 404, "no upload report in this session", who)
    kept = errors_out.find_kept_rejected_rows(get_state(request).settings.rejected_rows_dir(), report.upload_id)
    if kept is not None:  # the file's own rows and columns plus error_column, error_reason
        return FileResponse(kept, filename=kept.name)
    buf = io.StringIO()  # a whole-file error: no rows to give back, the listing instead
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["row_number", "column", "value", "reason"])
    for e in report.errors:
        out.writerow([e.row_number if e.row_number is not None else "", e.column or "", e.value or "", e.reason])
    if report.file_error:
        out.writerow(["", "", "", report.file_error])
    name = f"rejected-rows-upload-{report.upload_id}.csv"
    return Response(("\ufeff" + buf.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _visible(request: Request, upload_id: int):
    """(viewer, summary) or an error response: operators and regulators, scope-checked like the API."""
    who = viewer(request)
    if who is None:
        return None, to_login(request)
    if who.scope.role not in ("operator", "regulator"):
        return None, error_page(request, 403, "uploads are for operators and regulators", who)
    with closing(get_state(request).cursor()) as cur:
        try:
            return who, access.visible_upload(cur, who.scope, upload_id)
        except UserError as exc:
            return None, error_page(request, 404, exc.message, who)


def _upload_page(request: Request, upload_id: int, *, confirm: bool):
    """The upload's page; ``confirm`` adds the retraction form (P9) that ``POST …/retract`` takes."""
    who, found = _visible(request, upload_id)
    if who is None:
        return found
    return page(request, "upload.html", who=who, u=found, confirm=confirm)


@router.get("/uploads/{upload_id}")
def upload_page(request: Request, upload_id: int):
    return _upload_page(request, upload_id, confirm=False)


@router.get("/uploads/{upload_id}/retract")
def retract_confirm(request: Request, upload_id: int):
    return _upload_page(request, upload_id, confirm=True)


@router.post("/uploads/{upload_id}/retract")
async def retract(request: Request, upload_id: int):
    who = viewer(request)
    if who is None:
        return to_login(request)
    form = await request.form()
    if not check_csrf(who, form.get("csrf")):
        return error_page(request, 403, i18n.Tr(lang_of(request))("bad_csrf"), who)
    if who.scope.role not in ("operator", "regulator"):
        return error_page(request, 403, "uploads are for operators and regulators", who)
    state = get_state(request)
    cur = state.cursor()
    try:
        access.retract_visible_upload(cur, who.scope, upload_id, by=who.token.who)
    except UserError as exc:
        return error_page(request, 404 if exc.code == "not_found" else 409, exc.message, who)
    finally:
        cur.close()
    state.data_changed()
    return RedirectResponse(f"/uploads/{upload_id}", status_code=303)
