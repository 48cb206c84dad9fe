"""One router per resource, each with its prefix and tags: ``ROUTERS`` is what ``api.app`` includes.

Routes are thin edges: role checks through ``api.deps``, every owner / operator answer through
``settlement.access.scope``, the work in ``settlement`` and ``ledgers``. Route modules import ``api.deps``,
``api.errors``, ``api.models``; never each other.
"""

from __future__ import annotations

from api.routes import datasets, health, ledger, payouts, settlements, sql, tokens, uploads  # noqa: I001
from api.routes import affiliates, flags, inputs_admin, lifecycle, settle_admin  # the command line's door (issue 11 item 6)

ROUTERS = (health.router, payouts.router, settlements.router, ledger.router, uploads.router, sql.router,
           datasets.router, tokens.router, inputs_admin.router, settle_admin.router, lifecycle.router, flags.router,
           affiliates.router)
