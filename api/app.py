"""The FastAPI application (CONTRACT "HTTP API", issue 5): ``create_app(settings)``.

Owns wiring only: opening the store (this process becomes its one writer, with ``Settings.memory_limit``),
the SQL sandbox, error handlers, the routers of ``api.routes`` and the OpenAPI description. Routes are thin edges over the same functions the CLI uses.
Imports settlement and ledgers; nothing imports this module but `settle serve` and the tests.
"""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import console, endpoint
from api.errors import install_error_handlers
from api.routes import ROUTERS
from api.settings import Settings
from api.sql_guard import SqlSandbox
from api.state import ApiState
from settlement.core import store

DESCRIPTION = """
Bearer tokens come from `settle tokens create` (the database keeps only their SHA-256).

* **operator** acts for one platform: uploads its trade files, reads and retracts its uploads, reads its
  platform's payouts.
* **owner** sees its own enterprise's payouts and dataset status.
* **regulator** reads everything, runs settlements and queries the store with read-only SQL.

401: missing, unknown or revoked token. 403: a known token of the wrong role for the endpoint. 404: no such
resource, or one outside the token's scope (another platform's upload, another owner's dataset): the two
answer alike, so ids of other tenants cannot be probed. Every error has the body
`{"error": {"code": ..., "message": ..., "details": [...]}}`. Money is an exact string with two decimals.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # migrates forward; this process is now the one writer
        writer = store.open_store(settings.db, memory_limit=settings.memory_limit)
        sandbox = SqlSandbox(writer, settings.snapshot_dir(), memory_limit=settings.sql_memory_limit,
                             threads=settings.sql_threads, max_age_s=settings.sql_snapshot_max_age_s,
                             wait_s=settings.sql_snapshot_wait_s,
                             process_memory_bytes=settings.sql_process_memory_bytes)
        from api.upload_stream import remove_spool_leftovers

        remove_spool_leftovers(settings.resolved_upload_dir())  # uploads a killed server left behind
        app.state.api = ApiState(settings=settings, writer=writer, sandbox=sandbox,
                                 sql_slots=threading.BoundedSemaphore(settings.sql_max_concurrent))
        app.state.local_admin = endpoint.publish(writer, settings.db)  # <db>.server.json: the CLI's door
        try:
            yield
        finally:
            endpoint.withdraw(writer, app.state.local_admin)
            app.state.api.close()

    app = FastAPI(
        title="Data-exchange settlement API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # /docs is the console's self-hosted Swagger UI (no CDN); ReDoc is not served
        redoc_url=None,
        openapi_tags=[
            {"name": "uploads", "description": "Trade files from exchange operators (CONTRACT \"Trades\")"},
            {"name": "payouts", "description": "Current ledger balances per key"},
            {"name": "datasets", "description": "Clause-6 progress of one dataset"},
            {"name": "settlements", "description": "Settlement runs (P13)"},
            {"name": "ledger", "description": "The append-only hash-chained ledger"},
            {"name": "sql", "description": "Read-only SQL for regulators"},
            {"name": "tokens", "description": "Token administration (regulator) while the server runs"},
            {"name": "health", "description": "Liveness"},
        ],
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    console.install(app, settings)  # the web console at / and /docs, its static files, security headers
    return app
