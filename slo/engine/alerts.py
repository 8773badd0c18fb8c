"""Multi-window multi-burn-rate alert tiers (Google SRE workbook, chapter 5, table 5-8).

A tier fires when the burn rate exceeds its threshold over a long window AND over a short window
(1/12 of the long one, so the alert resets soon after the burning stops). The threshold is the
burn rate that spends `budget_percent` of the period's budget within the long window:

    threshold = (budget_percent / 100 x period_hours) / long_window_hours

so for a 30-day window: 14.4 = 2% of the budget in 1 hour, 6 = 5% in 6 hours, 3 = 10% in 1 day,
1 = 10% in 3 days; a 28-day window gives 13.44, 5.6, 2.8 and 0.933 (Sloth scales the same way).

The scaled threshold is then raised to at least 1x (`MIN_BURN_RATE_THRESHOLD`), so a 28-day
window's 3-day ticket fires at 1x, not 0.933x. This is the one place thresholds are scaled: the
budget engine, the status API and the exported Prometheus rules all read `alert_tiers_for`.
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

# At 1x the budget lasts exactly the period: an SLO burning at or below it is on course to meet its
# objective, so no tier may page or ticket below it. Scaling alone would (a 7-day window turns the
# workbook's 1-day and 3-day tickets into 0.7x and 0.23x, firing with most of the budget left).
MIN_BURN_RATE_THRESHOLD = 1.0


@dataclass(frozen=True)
class BurnRateTier:
    """One multi-window alert condition with its burn-rate threshold already scaled to the period.

    `burn_rate_threshold` is the effective threshold (never below `MIN_BURN_RATE_THRESHOLD`);
    `scaled_burn_rate_threshold` is what scaling `budget_percent` to the period gave before that.
    """

    severity: Literal["page", "ticket"]
    budget_percent: float
    long_window_min: int
    short_window_min: int
    burn_rate_threshold: float
    scaled_burn_rate_threshold: float

    @property
    def long_window(self) -> str:
        return window_name(self.long_window_min)

    @property
    def short_window(self) -> str:
        return window_name(self.short_window_min)

    @property
    def threshold_raised(self) -> bool:
        """True when scaling gave less than the floor and the threshold was raised to it."""
        return self.burn_rate_threshold > self.scaled_burn_rate_threshold


def scaled_burn_rate(budget_percent: float, period_days: float, long_window_min: int) -> float:
    """The burn rate that spends `budget_percent` of a `period_days` budget in the long window."""
    # Multiply first and divide once, so the workbook's numbers come out exact (2 x 43200 / 6000
    # is the float nearest 14.4; 0.02 x 720 is not).
    return (budget_percent * period_days * DAY_MIN) / (100.0 * long_window_min)


def burn_rate_threshold(budget_percent: float, period_days: float, long_window_min: int) -> float:
    """The effective threshold of a tier: the scaled burn rate, never below 1x."""
    return max(MIN_BURN_RATE_THRESHOLD, scaled_burn_rate(budget_percent, period_days, long_window_min))


def _tier(
    severity: Literal["page", "ticket"],
    budget_percent: float,
    long_min: int,
    short_min: int,
    period_days: float,
) -> BurnRateTier:
    return BurnRateTier(
        severity=severity,
        budget_percent=budget_percent,
        long_window_min=long_min,
        short_window_min=short_min,
        burn_rate_threshold=burn_rate_threshold(budget_percent, period_days, long_min),
        scaled_burn_rate_threshold=scaled_burn_rate(budget_percent, period_days, long_min),
    )


# (severity, budget %, long window minutes): Sloth's defaults, SRE workbook table 5-8.
_DEFAULT_TIERS: tuple[tuple[Literal["page", "ticket"], float, int], ...] = (
    ("page", 2.0, HOUR_MIN),  # 14.4x for 30 days: 2% of the budget in 1 hour
    ("page", 5.0, 6 * HOUR_MIN),  # 6x: 5% in 6 hours
    ("ticket", 10.0, DAY_MIN),  # 3x: 10% in 1 day
    ("ticket", 10.0, 3 * DAY_MIN),  # 1x: 10% in 3 days
)


def default_alert_tiers(window_days: float) -> list[BurnRateTier]:
    """The four workbook tiers (page 2%/1h, 5%/6h; ticket 10%/1d, 10%/3d) scaled to `window_days`."""
    # Short window = 1/12 of the long one (workbook): 5m, 30m, 2h, 6h.
    return [
        _tier(severity, percent, long_min, long_min // 12, window_days)
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
    return [
        _tier(
            tier.severity,
            tier.budget_percent,
            max(1, math.ceil(tier.long_window_s / MINUTE_S)),
            max(1, math.ceil(tier.short_window_s / MINUTE_S)),
            period_days,
        )
        for tier in spec.alert_tiers
    ]
