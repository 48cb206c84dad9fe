"""The web console (issue 12, CONTRACT "Web console"): server-rendered pages for owners, operators and
regulators at ``/``, served by the same app as the API (``settle serve``).

``install(app, settings)`` adds the security headers, the console's routers, its static files at
``/static`` (every asset served by the app: ECharts and Swagger UI are vendored) and the session store.
Pages call the same functions as the API (``settlement.access.scope``, ``settlement.explain``,
``settlement.inputs.ingest``, ``settlement.access.tokens``, ``api.sql_guard``); they hold no rule.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console.web import HERE, ConsoleState, SecurityHeaders, WriteEpoch
from api.settings import Settings


def install(app: FastAPI, settings: Settings) -> None:
    from api.console import operator, owner, pages, regulator, sql_console

    app.state.console = ConsoleState.from_settings(settings)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(WriteEpoch, counter=app.state.console.writes)  # page-data cache keys (web.data_version)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages, owner, operator, regulator, sql_console):
        app.include_router(module.router)
