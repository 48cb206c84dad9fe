"""The dated-settings lookup (settlement.core.dated) the policy parameters and the integrity thresholds share."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from settlement.core.dated import DatedPeriod, first_overlap, in_force, latest

D = dt.date


@dataclass(frozen=True)
class Setting(DatedPeriod):
    name: str
    valid_from: dt.date
    valid_to: dt.date | None


OLD = Setting("rate", D(2023, 1, 1), D(2024, 12, 31))
NEW = Setting("rate", D(2025, 1, 1), None)
CAP = Setting("cap", D(2023, 5, 8), D(2026, 5, 8))


def test_periods_cover_both_ends_and_an_open_end() -> None:
    assert in_force([OLD, NEW], D(2023, 1, 1)) is OLD
    assert in_force([OLD, NEW], D(2024, 12, 31)) is OLD
    assert in_force([OLD, NEW], D(2025, 1, 1)) is NEW
    assert in_force([OLD, NEW], D(2999, 1, 1)) is NEW
    assert in_force([OLD, NEW], D(2022, 12, 31)) is None
    assert in_force([], D(2024, 1, 1)) is None


def test_latest_is_the_period_that_starts_last() -> None:
    assert latest([NEW, OLD]) is NEW
    assert latest([]) is None


def test_overlap_is_found_per_setting_earlier_period_first() -> None:
    assert first_overlap([OLD, NEW, CAP], key=lambda p: p.name) is None
    touching = Setting("rate", D(2024, 12, 31), None)  # shares 31 Dec 2024 with OLD
    assert first_overlap([touching, CAP, OLD], key=lambda p: p.name) == (OLD, touching)
    open_ended = Setting("cap", D(2020, 1, 1), None)
    assert first_overlap([CAP, open_ended], key=lambda p: p.name) == (open_ended, CAP)
    assert first_overlap([OLD, Setting("cap", D(2023, 1, 1), None)], key=lambda p: p.name) is None
