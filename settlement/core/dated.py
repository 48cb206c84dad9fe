"""Dated settings: a value in force from ``valid_from`` to ``valid_to`` (both inclusive; None = open-ended).

One lookup for every file of dated values — the policy parameters (``settlement.core.params``) and the
integrity thresholds (``settlement.integrity.thresholds``): which period covers a date, which period is the
latest, and which two periods of one setting overlap (a load error, else a date would have two values).
Imports nothing from the engine.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar


class DatedPeriod:
    """Mixin for a frozen dataclass with ``valid_from`` / ``valid_to`` fields (declared by the dataclass)."""

    valid_from: dt.date
    valid_to: dt.date | None

    def covers(self, on: dt.date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


D = TypeVar("D", bound=DatedPeriod)


@dataclass(frozen=True)
class DatedFile(Generic[D]):
    """A loaded file of dated settings: its periods, and the sha256 of its bytes (stored with what it decided)."""

    sha256: str
    periods: tuple[D, ...]


def in_force(periods: Iterable[D], on: dt.date) -> D | None:
    """The period covering ``on`` (periods of one setting never overlap), or None."""
    return next((p for p in periods if p.covers(on)), None)


def latest(periods: Iterable[D]) -> D | None:
    """The period that starts last (for messages about no date in particular), or None when there is none."""
    return max(periods, key=lambda p: p.valid_from, default=None)


def first_overlap(periods: Iterable[D], key: Callable[[D], Hashable]) -> tuple[D, D] | None:
    """Two periods of one setting (same ``key``) that share a day, the earlier first; None when there are none."""
    by_key: dict[Hashable, list[D]] = {}
    for p in periods:
        by_key.setdefault(key(p), []).append(p)
    for ps in by_key.values():
        ps.sort(key=lambda p: p.valid_from)
        for a, b in zip(ps, ps[1:]):
            if a.valid_to is None or a.valid_to >= b.valid_from:
                return a, b
    return None
