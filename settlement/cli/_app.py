"""The typer application and what every command shares: --db, exit codes, error output.

Commands live in sibling modules and only parse, call a settlement function and format (thin edge).
Exit codes (CONTRACT): 0 success, 1 user error with a one-line reason on stderr, 2 file rejected.
"""

from __future__ import annotations

import getpass
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Iterator, NoReturn

import duckdb
import typer

from settlement.core import store

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Data-exchange royalty settlement engine.")

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default $SETTLE_DB, else ./settlement.duckdb)", show_default=False),
]

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_REJECTED = 2


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """One line on stderr, then exit: the user error path of CONTRACT."""
    typer.echo(f"error: {' '.join(str(message).split())}", err=True)
    raise typer.Exit(code)


def current_user() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "cli:" + os.environ.get("USER", "unknown")


@contextmanager
def opened_store(db: Path | None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an initialised store or exit 1 with why not."""
    path = store.resolve_db_path(db)
    try:
        con = store.open_store(path, read_only=read_only)
    except store.StoreNotInitialised as exc:
        fail(str(exc))
    except duckdb.IOException as exc:
        fail(f"cannot open {path}: {exc}")
    try:
        yield con
    finally:
        con.close()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
