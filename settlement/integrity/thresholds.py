"""Integrity thresholds as dated settings (``settlement/integrity/thresholds.toml``).

Owns: loading and validating the file and looking a setting up on a date. Like the policy parameters
(``settlement.core.params``) every value is dated and carries a ``note`` (a value without one is refused),
but these are not policy: they decide which patterns a reviewer sees, never an amount.
Imports nothing from the engine but the dated lookup of ``settlement.core.dated``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from settlement.core.dated import DatedFile, DatedPeriod, first_overlap, in_force

ThresholdValue = Decimal | int


class ThresholdFileError(ValueError):
    """The thresholds file is malformed: names the entry and what is wrong."""


class ThresholdNotInForce(LookupError):
    """No period of the setting covers the date asked for (or there is no such setting)."""


@dataclass(frozen=True)
class ThresholdPeriod(DatedPeriod):
    code: str
    name: str
    value: ThresholdValue
    valid_from: dt.date
    valid_to: dt.date | None
    note: str


@dataclass(frozen=True)
class Thresholds(DatedFile[ThresholdPeriod]):
    """A loaded thresholds file; ``sha256`` of its bytes is stored with every flag."""

    def value(self, code: str, name: str, on: dt.date) -> ThresholdValue:
        found = in_force((p for p in self.periods if (p.code, p.name) == (code, name)), on)
        if found is not None:
            return found.value
        raise ThresholdNotInForce(f"integrity threshold {code}.{name} is not in force on {on}")

    def on(self, on: dt.date) -> dict[str, ThresholdValue]:
        """Every setting in force on ``on`` as {"CODE.name": value}."""
        return {f"{p.code}.{p.name}": p.value for p in self.periods if p.covers(on)}


def _value(raw, where: str) -> ThresholdValue:
    if isinstance(raw, bool) or isinstance(raw, float):
        raise ThresholdFileError(f"{where}: value must be an integer or a decimal string, not {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise ThresholdFileError(f"{where}: value {raw!r} is not a decimal") from None
    raise ThresholdFileError(f"{where}: value {raw!r} has an unsupported type")


def parse_thresholds(text: str) -> tuple[ThresholdPeriod, ...]:
    doc = tomllib.loads(text)
    periods = []
    for i, entry in enumerate(doc.get("threshold", []), start=1):
        where = f"threshold #{i} ({entry.get('code')}.{entry.get('name')})"
        for key in ("code", "name", "value", "valid_from", "note"):
            if key not in entry or entry[key] in ("", None):
                raise ThresholdFileError(f"{where}: missing {key}")
        valid_from, valid_to = entry["valid_from"], entry.get("valid_to")
        if not isinstance(valid_from, dt.date) or (valid_to is not None and not isinstance(valid_to, dt.date)):
            raise ThresholdFileError(f"{where}: valid_from / valid_to must be TOML dates")
        periods.append(ThresholdPeriod(entry["code"], entry["name"], _value(entry["value"], where), valid_from,
                                       valid_to, entry["note"]))
    overlap = first_overlap(periods, key=lambda p: (p.code, p.name))
    if overlap is not None:
        a, b = overlap
        raise ThresholdFileError(f"{a.code}.{a.name}: overlapping periods from {a.valid_from} and {b.valid_from}")
    return tuple(periods)


def load_thresholds(path: str | Path | None = None) -> Thresholds:
    """The packaged thresholds, or the file at ``path``."""
    data = (Path(path).read_bytes() if path is not None
            else resources.files("settlement.integrity").joinpath("thresholds.toml").read_bytes())
    return Thresholds(sha256=hashlib.sha256(data).hexdigest(), periods=parse_thresholds(data.decode("utf-8")))
