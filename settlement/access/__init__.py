"""Who may see what: API tokens (roles operator / owner / regulator and their scopes).

The HTTP API and the web console both check scopes through this package, so an edge cannot forget one.
May import ``settlement.core`` and read the store; must not import the CLI or ``api``.
"""
