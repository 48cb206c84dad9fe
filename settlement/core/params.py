"""Policy parameters as dated data (rules as data, OpenFisca style): ``settlement/policy_params.toml``.

Owns: loading and validating the parameter file, and looking a value up on a date. Every value carries a
citation (clause + P-rule); a value without one is refused at load time. Asking for a date outside every
period of a value raises ``ParameterNotInForce`` — never a silent 0 (P2: the window is a dated parameter).
Must not import the store, the ledger, the CLI or the API.

Lookup dates (see the header of the TOML file and docs/architecture.md):
- ``window.start`` / ``window.end`` on 31 Dec of the settlement year (``window_for_year``);
- clause rates, caps and the caller threshold on the first in-scope day of the year
  (``in_scope_days(year)[0]``);
- ``affiliates.equity_threshold`` on the date the affiliate graph is built for (P8).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from settlement.core.dated import DatedFile, DatedPeriod, first_overlap, in_force, latest

ParamValue = Decimal | int | dt.date

# The names the engine relies on, with the Python type their value must have.
EXPECTED_TYPES: dict[str, type] = {
    "window.start": dt.date,
    "window.end": dt.date,
    "clause6.rate": Decimal,
    "clause6.caller_threshold": int,
    "clause6.cap": Decimal,
    "clause7.rate": Decimal,
    "clause7.cap": Decimal,
    "affiliates.equity_threshold": Decimal,
}


class ParameterFileError(ValueError):
    """The parameter file is malformed: names the parameter (and its entry number) and what is wrong."""


class ParameterNotInForce(LookupError):
    """No period of the parameter covers the date asked for."""


class UnknownParameter(KeyError):
    """No parameter of that name in the file."""


@dataclass(frozen=True)
class ParamPeriod(DatedPeriod):
    name: str
    value: ParamValue
    valid_from: dt.date
    valid_to: dt.date | None  # inclusive; None = open-ended
    citation: str


@dataclass(frozen=True)
class PolicyParams(DatedFile[ParamPeriod]):
    """A loaded, validated parameter file. ``sha256`` (of the file bytes) goes into settlement_runs."""

    source: str

    def names(self) -> tuple[str, ...]:
        return tuple(sorted({p.name for p in self.periods}))

    def period(self, name: str, on: dt.date) -> ParamPeriod:
        """The period of ``name`` in force on ``on`` (with its citation, for explanations)."""
        if not isinstance(on, dt.date) or isinstance(on, dt.datetime):
            raise TypeError(f"parameter lookup needs a date, got {on!r}")
        candidates = [p for p in self.periods if p.name == name]
        if not candidates:
            raise UnknownParameter(f"unknown policy parameter {name!r} (known: {', '.join(self.names())})")
        found = in_force(candidates, on)
        if found is not None:
            return found
        spans = "; ".join(f"{p.valid_from}..{p.valid_to or 'open'}" for p in candidates)
        raise ParameterNotInForce(f"policy parameter {name!r} is not in force on {on} (valid: {spans})")

    def value(self, name: str, on: dt.date) -> ParamValue:
        """The value of ``name`` on ``on``; raises ParameterNotInForce outside every period."""
        return self.period(name, on).value

    def latest_value(self, name: str) -> ParamValue | None:
        """The value of the period of ``name`` that starts last (for messages about no date in particular)."""
        found = latest(p for p in self.periods if p.name == name)
        return None if found is None else found.value

    def window_for_year(self, year: int) -> tuple[dt.date, dt.date]:
        """The policy window (P2) as it stands at the end of settlement year ``year`` (P3)."""
        on = dt.date(year, 12, 31)
        return self.value("window.start", on), self.value("window.end", on)  # type: ignore[return-value]

    def in_scope_days(self, year: int) -> tuple[dt.date, dt.date] | None:
        """First and last in-scope day of ``year`` (Y ∩ window, P2/P3), or None when Y has none.

        A year for which no window is defined at all (before the policy, after its last settlement
        year) has no in-scope day: by P2 nothing in it is paid.
        """
        try:
            start, end = self.window_for_year(year)
        except ParameterNotInForce:
            return None
        first, last = max(start, dt.date(year, 1, 1)), min(end, dt.date(year, 12, 31))
        return (first, last) if first <= last else None


def _parse_value(name: str, where: str, raw: object) -> ParamValue:
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ParameterFileError(
            f"{where}: value of {name!r} is a {type(raw).__name__}; write decimals as strings, e.g. \"0.10\" (P1)"
        )
    if isinstance(raw, dt.datetime) or isinstance(raw, dt.time):
        raise ParameterFileError(f"{where}: value of {name!r} must be a date, a decimal string or an integer")
    if isinstance(raw, (int, dt.date)):
        return raw
    if isinstance(raw, str):
        try:
            d = Decimal(raw.strip())
        except InvalidOperation:
            raise ParameterFileError(f"{where}: value of {name!r} is not a decimal: {raw!r}") from None
        if not d.is_finite():
            raise ParameterFileError(f"{where}: value of {name!r} is not finite: {raw!r}")
        return d
    raise ParameterFileError(f"{where}: value of {name!r} has unsupported type {type(raw).__name__}")


def _parse_date(name: str, where: str, key: str, raw: object) -> dt.date:
    if isinstance(raw, dt.datetime) or not isinstance(raw, dt.date):
        raise ParameterFileError(f"{where}: {key} of {name!r} must be a TOML date (YYYY-MM-DD), got {raw!r}")
    return raw


def parse_params(data: bytes, source: str = "<bytes>") -> PolicyParams:
    """Validate parameter-file bytes. Raises ParameterFileError naming the parameter at fault."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ParameterFileError(f"{source}: not a valid UTF-8 TOML file: {exc}") from None
    entries = doc.get("parameter")
    if not isinstance(entries, list) or not entries:
        raise ParameterFileError(f"{source}: no [[parameter]] entries")
    periods: list[ParamPeriod] = []
    for i, entry in enumerate(entries, start=1):
        where = f"{source}: parameter entry {i}"
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ParameterFileError(f"{where}: missing name")
        name = name.strip()
        unknown = set(entry) - {"name", "value", "valid_from", "valid_to", "citation"}
        if unknown:
            raise ParameterFileError(f"{where}: {name!r} has unknown keys {sorted(unknown)}")
        citation = entry.get("citation")
        if not isinstance(citation, str) or not citation.strip():
            raise ParameterFileError(f"{where}: parameter {name!r} has no citation (clause and P-rule required)")
        if "value" not in entry:
            raise ParameterFileError(f"{where}: parameter {name!r} has no value")
        value = _parse_value(name, where, entry["value"])
        if "valid_from" not in entry:
            raise ParameterFileError(f"{where}: parameter {name!r} has no valid_from")
        valid_from = _parse_date(name, where, "valid_from", entry["valid_from"])
        valid_to = _parse_date(name, where, "valid_to", entry["valid_to"]) if "valid_to" in entry else None
        if valid_to is not None and valid_to < valid_from:
            raise ParameterFileError(f"{where}: parameter {name!r} has valid_to {valid_to} before valid_from {valid_from}")
        expected = EXPECTED_TYPES.get(name)
        if expected is not None and type(value) is not expected:
            raise ParameterFileError(
                f"{where}: parameter {name!r} must be a {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        periods.append(ParamPeriod(name, value, valid_from, valid_to, citation.strip()))
    types: dict[str, set[type]] = {}
    for p in periods:
        types.setdefault(p.name, set()).add(type(p.value))
    mixed = next((name for name, ts in types.items() if len(ts) > 1), None)
    if mixed is not None:
        raise ParameterFileError(f"{source}: parameter {mixed!r} mixes value types across periods")
    overlap = first_overlap(periods, key=lambda p: p.name)  # else a date would have two values
    if overlap is not None:
        a, b = overlap
        raise ParameterFileError(
            f"{source}: parameter {a.name!r} has overlapping periods starting {a.valid_from} and {b.valid_from}")
    missing = sorted(set(EXPECTED_TYPES) - set(types))
    if missing:
        raise ParameterFileError(f"{source}: missing parameters {', '.join(missing)}")
    return PolicyParams(sha256=hashlib.sha256(data).hexdigest(), source=source, periods=tuple(periods))


def default_params_path() -> Path:
    return Path(str(resources.files("settlement.core").joinpath("policy_params.toml")))


def load_params(path: Path | None = None) -> PolicyParams:
    """Load and validate a parameter file (default: the packaged ``settlement/policy_params.toml``)."""
    path = Path(path) if path is not None else default_params_path()
    return parse_params(path.read_bytes(), source=str(path))
