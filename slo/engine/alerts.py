"""Multi-window multi-burn-rate alert tiers (Google SRE workbook, chapter 5, table 5-8).

A tier fires when the burn rate exceeds its threshold over a long window AND over a short window
(1/12 of the long one, so the alert resets soon after the burning stops). The threshold is the
burn rate that spends `budget_percent` of the period's budget within the long window:

    threshold = (budget_percent / 100 x period_hours) / long_window_hours

so for a 30-day window: 14.4 = 2% of the budget in 1 hour, 6 = 5% in 6 hours, 3 = 10% in 1 day,
1 = 10% in 3 days; a 28-day window gives 13.44, 5.6, 2.8 and 0.933 (Sloth scales the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from slo.spec import SloSpec

from .windows import DAY_MIN, HOUR_MIN, MINUTE_S, window_name

# Calendar periods vary in length (a month is 28..31 days) but an alert threshold must be one
# number, the same here and in the exported Prometheus rules, so calendar SLOs scale their
# thresholds by the nominal period length.
NOMINAL_CALENDAR_DAYS = {"week": 7, "month": 30}


@dataclass(frozen=True)
class BurnRateTier:
    """One multi-window alert condition with its burn-rate threshold already scaled to the period."""

    severity: Literal["page", "ticket"]
    budget_percent: float
    long_window_min: int
    short_window_min: int
    burn_rate_threshold: float

    @property
    def long_window(self) -> str:
        return window_name(self.long_window_min)

    @property
    def short_window(self) -> str:
        return window_name(self.short_window_min)


def burn_rate_threshold(budget_percent: float, period_days: float, long_window_min: int) -> float:
    """The burn rate that spends `budget_percent` of a `period_days` budget in the long window."""
    # Multiply first and divide once, so the workbook's numbers come out exact (2 x 43200 / 6000
    # is the float nearest 14.4; 0.02 x 720 is not).
    return (budget_percent * period_days * DAY_MIN) / (100.0 * long_window_min)


# (severity, budget %, long window minutes): Sloth's defaults, SRE workbook table 5-8.
_DEFAULT_TIERS: tuple[tuple[Literal["page", "ticket"], float, int], ...] = (
    ("page", 2.0, HOUR_MIN),  # 14.4x for 30 days: 2% of the budget in 1 hour
    ("page", 5.0, 6 * HOUR_MIN),  # 6x: 5% in 6 hours
    ("ticket", 10.0, DAY_MIN),  # 3x: 10% in 1 day
    ("ticket", 10.0, 3 * DAY_MIN),  # 1x: 10% in 3 days
)


def default_alert_tiers(window_days: float) -> list[BurnRateTier]:
    """The four workbook tiers (page 2%/1h, 5%/6h; ticket 10%/1d, 10%/3d) scaled to `window_days`."""
    return [
        BurnRateTier(
            severity=severity,
            budget_percent=percent,
            long_window_min=long_min,
            # Short window = 1/12 of the long one (workbook): 5m, 30m, 2h, 6h.
            short_window_min=long_min // 12,
            burn_rate_threshold=burn_rate_threshold(percent, window_days, long_min),
        )
        for severity, percent, long_min in _DEFAULT_TIERS
    ]


def alert_period_days(spec: SloSpec) -> int:
    """The period length alert thresholds are scaled by: rolling days, or 7 / 30 for calendar."""
    if spec.window.type == "rolling":
        return spec.window.days
    return NOMINAL_CALENDAR_DAYS[spec.window.unit]


def alert_tiers_for(spec: SloSpec) -> list[BurnRateTier]:
    """The spec's own `alert_tiers` (Pyrra #1507: fixed tiers do not fit everyone), else the defaults.

    Window lengths are rounded up to whole minutes: the engine works on minute buckets.
    """
    period_days = alert_period_days(spec)
    if not spec.alert_tiers:
        return default_alert_tiers(period_days)
    tiers = []
    for tier in spec.alert_tiers:
        long_min = max(1, math.ceil(tier.long_window_s / MINUTE_S))
        short_min = max(1, math.ceil(tier.short_window_s / MINUTE_S))
        tiers.append(
            BurnRateTier(
                severity=tier.severity,
                budget_percent=tier.budget_percent,
                long_window_min=long_min,
                short_window_min=short_min,
                burn_rate_threshold=burn_rate_threshold(tier.budget_percent, period_days, long_min),
            )
        )
    return tiers
