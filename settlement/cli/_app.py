"""The typer application and what every command shares: --db, -h, --version, exit codes, error output.

Commands live in sibling modules and only parse, call a settlement function (through the file or a running
server: ``settlement.cli.dispatch``) and format (thin edge);
``settlement.cli`` registers them explicitly, in pipeline order, with ``register``.
Exit codes (CONTRACT): 0 success, 1 user error with a one-line reason on stderr, 2 file rejected,
64 usage error (EX_USAGE: unknown option or command, bad option value).
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NoReturn

import duckdb
import typer
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click, whose exceptions and context are the ones raised
    from typer._click import Context as ClickContext, exceptions as click_exceptions
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer on the click package
    from click import Context as ClickContext, exceptions as click_exceptions, get_current_context

from settlement.core import store
from settlement.core.errors import UserError

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_REJECTED = 2
EXIT_USAGE = 64  # sysexits.h EX_USAGE

DISTRIBUTION = "data-exchange-settlement"
_GLOBAL_DB = "settle.db"  # key in click's ctx.meta, shared by every nested context of one invocation
_ORDER: list[str] = []  # command names in registration (pipeline) order


class PipelineGroup(TyperGroup):
    """The root group: lists commands in registration order (sub-apps included, which typer would put
    last) and maps errors to the exit codes of CONTRACT, with or without click's standalone mode."""

    def list_commands(self, ctx: ClickContext) -> list[str]:
        known = {name: i for i, name in enumerate(_ORDER)}
        return sorted(self.commands, key=lambda name: known.get(name, len(known)))

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        code = exit_code_of(lambda: super(PipelineGroup, self).main(
            args, prog_name, complete_var, standalone_mode=False, **extra))
        if standalone_mode:
            sys.exit(code)
        return code


def exit_code_of(invoke: Callable[[], Any]) -> int:
    """Run a non-standalone click invocation; print what went wrong on stderr; return the exit code."""
    try:
        rv = invoke()
    except click_exceptions.UsageError as exc:  # also NoSuchOption, BadParameter, missing command
        exc.show()
        return EXIT_USAGE
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        return EXIT_USER_ERROR
    except click_exceptions.ClickException as exc:
        exc.show()
        return exc.exit_code
    except UserError as exc:  # a request refused by the core (unknown id, conflict ...): one line, exit 1
        typer.echo(f"error: {_one_line(exc.message)}", err=True)
        return EXIT_USER_ERROR
    return rv if isinstance(rv, int) else EXIT_OK  # typer.Exit(n) comes back as n


app = typer.Typer(
    cls=PipelineGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Data-exchange royalty settlement engine.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default $SETTLE_DB, else ./settlement.duckdb)", show_default=False),
]


def choices(name: str, *values: str) -> type[Enum]:
    """The closed list of values of an option (typer shows and checks them): a str Enum whose members are
    named by their values ('prior-awards' as ``prior_awards``). One line a vocabulary instead of a class."""
    return Enum(name, [(v.replace("-", "_"), v) for v in values], type=str)


def register(panel: str, name: str, target: Callable[..., Any] | typer.Typer) -> None:
    """Add one command (a function) or command group (a typer app) to ``settle`` under a help panel."""
    _ORDER.append(name)
    if isinstance(target, typer.Typer):
        app.add_typer(target, name=name, rich_help_panel=panel)
    else:
        app.command(name, rich_help_panel=panel)(target)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"settle {importlib.metadata.version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    db: DbOption = None,
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Data-exchange royalty settlement engine."""
    ctx.meta[_GLOBAL_DB] = db


def db_path(db: Path | None) -> Path:
    """The database of this invocation: the command's own --db, else the global one, else the default."""
    if db is None:
        ctx = get_current_context(silent=True)
        db = ctx.meta.get(_GLOBAL_DB) if ctx is not None else None
    return store.resolve_db_path(db)


def db_given(db: Path | None) -> Path | None:
    """--db as given after or before the command, or None when neither was (``settle demo`` needs to know)."""
    if db is not None:
        return db
    ctx = get_current_context(silent=True)
    return ctx.meta.get(_GLOBAL_DB) if ctx is not None else None


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def fail(message: str, code: int = EXIT_USER_ERROR) -> NoReturn:
    """One line on stderr, then exit: the user error path of CONTRACT."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(code)


def parent_must_exist(out: Path) -> None:
    """A file is about to be written: exit 1 naming its directory when that does not exist."""
    if not out.parent.exists():
        fail(f"directory {out.parent} does not exist")


def current_user() -> str:
    try:
        return "cli:" + getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "cli:" + os.environ.get("USER", "unknown")


def server_for(db: Path | None):
    """The `settle serve` running on this invocation's store (a ``settlement.cli.remote.Server``: the
    command goes through its API), or None: the command opens the file itself (issue 11 item 6)."""
    from settlement.cli import remote  # imports this module

    return remote.find_server(db_path(db))


@contextmanager
def opened_store(db: Path | None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open an initialised store or exit 1 with why not."""
    path = db_path(db)
    try:
        con = store.open_store(path, read_only=read_only)
    except store.StoreNotInitialised as exc:
        fail(str(exc))
    except duckdb.IOException as exc:
        held = " (another process holds it, and no `settle serve` endpoint file says where to reach it)" \
            if "lock" in str(exc).lower() else ""
        fail(f"cannot open {path}: {exc}{held}")
    try:
        yield con
    finally:
        con.close()


def policy_params():
    """The packaged, cited policy parameters, or exit 1 when the file is broken.

    Imported here, not at module level: a broken parameter file must not break the other commands."""
    from settlement.core import params

    try:
        return params.load_params()
    except params.ParameterFileError as exc:
        fail(f"policy parameter file is invalid: {exc}")


def latest_value(loaded, name: str):
    """The value of the most recent period of parameter ``name`` (for messages about any date)."""
    periods = [p for p in loaded.periods if p.name == name]
    if not periods:
        fail(f"the policy parameters define no {name}")
    return max(periods, key=lambda p: p.valid_from).value


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()
