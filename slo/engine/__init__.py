"""The error-budget engine's pure core: window sums, budgets, burn rates and alert state.

No Django here. The Django side feeds per-minute arrays or pre-aggregated window sums and stores
the results; see `evaluate.py` for the rules about missing data and time to exhaustion.
"""

from __future__ import annotations

from .alerts import (
    MIN_BURN_RATE_THRESHOLD,
    NOMINAL_CALENDAR_DAYS,
    BurnRateTier,
    alert_period_days,
    alert_tiers_for,
    burn_rate_threshold,
    default_alert_tiers,
    scaled_burn_rate,
)
from .evaluate import (
    ALERT_STATES,
    DATA_QUALITY,
    PERIOD,
    TIER_STATUS,
    BatchParams,
    BatchResult,
    SloResult,
    TierResult,
    WindowResult,
    batch_params,
    error_budget_ratio,
    evaluate_batch,
    evaluate_minutes,
    evaluate_slo,
    period_minutes,
)
from .windows import (
    BURN_WINDOWS_MIN,
    DAY_MIN,
    HOUR_MIN,
    MINUTE_S,
    WindowSums,
    budget_units,
    calendar_period_bounds,
    minutes_between,
    window_name,
    window_sums,
    window_sums_with_rollups,
)

__all__ = [
    "ALERT_STATES",
    "BURN_WINDOWS_MIN",
    "DATA_QUALITY",
    "DAY_MIN",
    "HOUR_MIN",
    "MINUTE_S",
    "MIN_BURN_RATE_THRESHOLD",
    "NOMINAL_CALENDAR_DAYS",
    "PERIOD",
    "TIER_STATUS",
    "BatchParams",
    "BatchResult",
    "BurnRateTier",
    "SloResult",
    "TierResult",
    "WindowResult",
    "WindowSums",
    "alert_period_days",
    "alert_tiers_for",
    "batch_params",
    "budget_units",
    "burn_rate_threshold",
    "calendar_period_bounds",
    "default_alert_tiers",
    "error_budget_ratio",
    "evaluate_batch",
    "evaluate_minutes",
    "evaluate_slo",
    "minutes_between",
    "period_minutes",
    "scaled_burn_rate",
    "window_name",
    "window_sums",
    "window_sums_with_rollups",
]
