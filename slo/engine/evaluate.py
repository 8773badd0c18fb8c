"""Budget, burn rates, data quality and alert state for many SLOs at once.

The batch is laid out as columns: the burn-rate windows shared by every SLO (5m .. 3d plus any
window a custom alert tier needs), then one last column for each SLO's own period (28d, 30d, or
the calendar period so far). Once the window sums are known (from minute arrays, from rollups, or
fed directly by the caller) everything is a handful of vectorised numpy operations.

Rules that make the numbers trustworthy:

- No data is not good data. A window with zero valid events is `no_data` and its SLI, burn rate and
  budget are NaN (None in JSON), never 100% / 0.
- Fewer valid events than `min_valid_events` is `insufficient_traffic`: numbers are still shown
  but cannot decide an alert.
- Missing data never resolves or passes an alert silently. Each tier is three-valued: a window
  whose data quality is not `ok` is UNKNOWN, and tiers combine with Kleene logic (false AND
  unknown = false, true AND unknown = unknown). A tier whose other window is known to be under the
  threshold is decided (`not_firing`) whatever the unknown window holds; otherwise it is
  `unknown`. Overall: `page` if a page tier fires; else `unknown` if a page tier is unknown (a page
  may be hidden); else `ticket` if a ticket tier fires; else `unknown` if a ticket tier is
  unknown; else `none`. The per-tier results keep the evidence either way.
- Time to exhaustion: the remaining budget divided by the current (1h) burn rate, in the period's
  time scale: `remaining_ratio x period_s / burn_1h`, because burn 1 spends exactly the whole budget
  over one period. It is a linear projection that ignores bad events rolling out of a rolling
  window. 0 when the budget is already exhausted (basis `exhausted`); None when the 1h burn is 0
  (`not_burning`: never, at this rate) or not defined (`no_data`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from slo.spec import SloSpec

from .alerts import BurnRateTier, alert_tiers_for
from .windows import (
    BURN_WINDOWS_MIN,
    DAY_MIN,
    MINUTE_S,
    WindowSums,
    budget_units,
    calendar_period_bounds,
    minutes_between,
    window_name,
    window_sums,
)

DATA_QUALITY = ("ok", "insufficient_traffic", "no_data")
DQ_OK, DQ_INSUFFICIENT, DQ_NO_DATA = 0, 1, 2

TIER_STATUS = ("not_firing", "firing", "unknown")
TIER_NOT_FIRING, TIER_FIRING, TIER_UNKNOWN, TIER_ABSENT = 0, 1, 2, -1

ALERT_STATES = ("none", "ticket", "page", "unknown")
ALERT_NONE, ALERT_TICKET, ALERT_PAGE, ALERT_UNKNOWN = 0, 1, 2, 3

PERIOD = "period"
# "At the current burn" means the 1h burn rate: recent enough to reflect an incident, long enough
# not to swing on a single bad minute.
CURRENT_BURN_WINDOW_MIN = 60


def error_budget_ratio(objective_percent: float) -> float:
    """`1 - objective` as the float nearest the decimal intent (99.9 -> 0.001, not 0.00100000000000000089)."""
    return float((Decimal(100) - Decimal(repr(objective_percent))) / Decimal(100))


@dataclass(frozen=True)
class BatchParams:
    """Per-SLO parameters as arrays, row i for SLO i; see `batch_params` to build them from specs."""

    services: tuple[str, ...]
    names: tuple[str, ...]
    budgeting_methods: tuple[str, ...]
    objective_ratio: np.ndarray  # (n,)
    error_budget_ratio: np.ndarray  # (n,) 1 - objective
    min_valid_events: np.ndarray  # (n,)
    burn_windows_min: tuple[int, ...]  # shared columns 0..W-1
    period_window_min: np.ndarray  # (n,) minutes summed for the period column (calendar: so far)
    period_total_min: np.ndarray  # (n,) the whole period, for time to exhaustion
    period_bounds: tuple[tuple[datetime, datetime] | None, ...]
    tier_page: np.ndarray  # (n, K) bool; K = most tiers of any SLO, padded
    tier_budget_percent: np.ndarray  # (n, K), NaN padding
    tier_threshold: np.ndarray  # (n, K), NaN padding
    tier_long_col: np.ndarray  # (n, K) column index into burn windows
    tier_short_col: np.ndarray  # (n, K)

    @property
    def n_slos(self) -> int:
        return len(self.names)

    @property
    def window_minutes(self) -> np.ndarray:
        """`(n, W + 1)` minutes per column: the burn windows, then each SLO's period."""
        burn = np.broadcast_to(
            np.asarray(self.burn_windows_min, dtype=np.int64), (self.n_slos, len(self.burn_windows_min))
        )
        return np.concatenate([burn, self.period_window_min[:, None].astype(np.int64)], axis=1)

    @property
    def window_names(self) -> tuple[str, ...]:
        return tuple(window_name(m) for m in self.burn_windows_min) + (PERIOD,)


def period_minutes(spec: SloSpec, now: datetime | None) -> tuple[int, int, tuple[datetime, datetime] | None]:
    """(minutes to sum for the period, minutes of the whole period, calendar bounds or None)."""
    if spec.window.type == "rolling":
        minutes = spec.window.days * DAY_MIN
        return minutes, minutes, None
    if now is None:
        raise ValueError(f"{spec.service}/{spec.name}: a calendar window needs `now`")
    start, end = calendar_period_bounds(spec.window.unit, spec.window.timezone, now, spec.window.start)
    return minutes_between(start, now), minutes_between(start, end), (start, end)


def batch_params(
    specs: Sequence[SloSpec],
    *,
    now: datetime | None = None,
    tiers: Sequence[Sequence[BurnRateTier]] | None = None,
) -> BatchParams:
    """Arrays for `evaluate_batch` from SLO specs; `now` (aware) is needed for calendar windows.
    `tiers`: each spec's `alert_tiers_for(spec)` when the caller has them cached."""
    tiers_by_slo = list(tiers) if tiers is not None else [alert_tiers_for(spec) for spec in specs]
    burn_windows = set(BURN_WINDOWS_MIN.values())
    for slo_tiers in tiers_by_slo:
        for tier in slo_tiers:
            burn_windows.update((tier.long_window_min, tier.short_window_min))
    burn_windows_min = tuple(sorted(burn_windows))
    column = {minutes: i for i, minutes in enumerate(burn_windows_min)}

    n = len(specs)
    k = max((len(t) for t in tiers_by_slo), default=0)
    tier_page = np.zeros((n, k), dtype=bool)
    tier_budget = np.full((n, k), np.nan)
    tier_threshold = np.full((n, k), np.nan)
    # Padding points at column 0; its NaN threshold makes it absent, never firing.
    tier_long = np.zeros((n, k), dtype=np.int64)
    tier_short = np.zeros((n, k), dtype=np.int64)
    for row, slo_tiers in enumerate(tiers_by_slo):
        for j, tier in enumerate(slo_tiers):
            tier_page[row, j] = tier.severity == "page"
            tier_budget[row, j] = tier.budget_percent
            tier_threshold[row, j] = tier.burn_rate_threshold
            tier_long[row, j] = column[tier.long_window_min]
            tier_short[row, j] = column[tier.short_window_min]

    periods = [period_minutes(spec, now) for spec in specs]
    return BatchParams(
        services=tuple(s.service for s in specs),
        names=tuple(s.name for s in specs),
        budgeting_methods=tuple(s.budgeting_method for s in specs),
        objective_ratio=np.array([1.0 - error_budget_ratio(s.objective) for s in specs], dtype=np.float64),
        error_budget_ratio=np.array([error_budget_ratio(s.objective) for s in specs], dtype=np.float64),
        min_valid_events=np.array([s.min_valid_events for s in specs], dtype=np.float64),
        burn_windows_min=burn_windows_min,
        period_window_min=np.array([p[0] for p in periods], dtype=np.int64),
        period_total_min=np.array([p[1] for p in periods], dtype=np.int64),
        period_bounds=tuple(p[2] for p in periods),
        tier_page=tier_page,
        tier_budget_percent=tier_budget,
        tier_threshold=tier_threshold,
        tier_long_col=tier_long,
        tier_short_col=tier_short,
    )


@dataclass(frozen=True)
class BatchResult:
    """Everything `evaluate_batch` computes, as arrays; `slo(i)` gives one SLO's `SloResult`."""

    params: BatchParams
    sums: WindowSums
    bad: np.ndarray  # (n, W+1)
    sli: np.ndarray  # (n, W+1), NaN without data
    burn_rate: np.ndarray  # (n, W+1), NaN without data
    data_quality: np.ndarray  # (n, W+1) codes into DATA_QUALITY
    error_budget_total: np.ndarray  # (n,) allowed bad units over the period
    error_budget_remaining_ratio: np.ndarray  # (n,) may be negative
    time_to_exhaustion_s: np.ndarray  # (n,)
    tier_status: np.ndarray  # (n, K) codes into TIER_STATUS, -1 for padding
    tier_long_burn: np.ndarray  # (n, K)
    tier_short_burn: np.ndarray  # (n, K)
    alert_state: np.ndarray  # (n,) codes into ALERT_STATES

    def slo(self, row: int) -> SloResult:
        """The full result of one SLO."""
        return _slo_result(self, row)


def evaluate_batch(sums: WindowSums, params: BatchParams) -> BatchResult:
    """Evaluate every SLO from its window sums, shaped `(n_slos, W + 1)` in `params`' column order.

    The sums may come from `window_sums` over minute arrays, from `window_sums_with_rollups`, or
    straight from the caller (`WindowSums.from_array`); this function never sees minutes.
    """
    good = np.asarray(sums.good, dtype=np.float64)
    valid = np.asarray(sums.valid, dtype=np.float64)
    events = np.asarray(sums.valid_events, dtype=np.float64)
    expected = (params.n_slos, len(params.burn_windows_min) + 1)
    if good.shape != expected:
        raise ValueError(f"sums must be shaped {expected}, got {good.shape}")
    budget_ratio = params.error_budget_ratio[:, None]

    bad = valid - good
    has_data = valid > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # NaN, not 0 or 1, where there is nothing to divide: 0/0 is not a verdict.
        sli = np.where(has_data, good / valid, np.nan)
        # From bad, not 1 - sli, to avoid cancellation: (bad / valid) / (1 - objective).
        burn_rate = np.where(has_data, (bad / np.where(has_data, valid, 1.0)) / budget_ratio, np.nan)
    data_quality = np.where(
        ~has_data, DQ_NO_DATA, np.where(events < params.min_valid_events[:, None], DQ_INSUFFICIENT, DQ_OK)
    ).astype(np.int8)

    # The period column: budget total = (1 - objective) x valid, consumed = bad,
    # remaining = 1 - bad / allowed_bad = ((1 - target) - errors/total) / (1 - target) (Pyrra).
    period_valid = valid[:, -1]
    period_bad = bad[:, -1]
    budget_total = params.error_budget_ratio * period_valid
    with np.errstate(divide="ignore", invalid="ignore"):
        remaining = np.where(
            period_valid > 0, 1.0 - period_bad / np.where(period_valid > 0, budget_total, 1.0), np.nan
        )

    current_col = params.burn_windows_min.index(CURRENT_BURN_WINDOW_MIN)
    current_burn = burn_rate[:, current_col]
    period_s = params.period_total_min.astype(np.float64) * MINUTE_S
    with np.errstate(divide="ignore", invalid="ignore"):
        projected = remaining * period_s / current_burn
    time_to_exhaustion = np.where(
        remaining <= 0, 0.0, np.where((current_burn > 0) & np.isfinite(remaining), projected, np.nan)
    )

    tier_status, long_burn, short_burn = _tier_status(burn_rate, data_quality, params)
    tier_is_page = params.tier_page
    page_firing = ((tier_status == TIER_FIRING) & tier_is_page).any(axis=1)
    page_unknown = ((tier_status == TIER_UNKNOWN) & tier_is_page).any(axis=1)
    ticket_firing = ((tier_status == TIER_FIRING) & ~tier_is_page).any(axis=1)
    ticket_unknown = ((tier_status == TIER_UNKNOWN) & ~tier_is_page).any(axis=1)
    alert_state = np.select(
        [page_firing, page_unknown, ticket_firing, ticket_unknown],
        [ALERT_PAGE, ALERT_UNKNOWN, ALERT_TICKET, ALERT_UNKNOWN],
        default=ALERT_NONE,
    ).astype(np.int8)

    return BatchResult(
        params=params,
        sums=sums,
        bad=bad,
        sli=sli,
        burn_rate=burn_rate,
        data_quality=data_quality,
        error_budget_total=budget_total,
        error_budget_remaining_ratio=remaining,
        time_to_exhaustion_s=time_to_exhaustion,
        tier_status=tier_status,
        tier_long_burn=long_burn,
        tier_short_burn=short_burn,
        alert_state=alert_state,
    )


def _tier_status(
    burn_rate: np.ndarray, data_quality: np.ndarray, params: BatchParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three-valued (Kleene) AND of `burn > threshold` over each tier's long and short window."""
    long_burn = np.take_along_axis(burn_rate, params.tier_long_col, axis=1)
    short_burn = np.take_along_axis(burn_rate, params.tier_short_col, axis=1)
    long_known = np.take_along_axis(data_quality, params.tier_long_col, axis=1) == DQ_OK
    short_known = np.take_along_axis(data_quality, params.tier_short_col, axis=1) == DQ_OK
    threshold = params.tier_threshold
    # Strictly greater, as in the workbook ("burn rate > 14.4").
    long_over = long_burn > threshold
    short_over = short_burn > threshold
    firing = long_known & long_over & short_known & short_over
    decided_not = (long_known & ~long_over) | (short_known & ~short_over)
    status = np.where(firing, TIER_FIRING, np.where(decided_not, TIER_NOT_FIRING, TIER_UNKNOWN))
    status = np.where(np.isnan(threshold), TIER_ABSENT, status).astype(np.int8)
    return status, long_burn, short_burn


# ---------------------------------------------------------------- per-SLO result objects


@dataclass(frozen=True)
class WindowResult:
    """One window's sums and derived values; NaN where undefined (no data)."""

    window: str
    window_minutes: int
    good: float
    valid: float
    bad: float
    valid_events: float
    missing_minutes: int
    sli: float
    burn_rate: float
    data_quality: str


@dataclass(frozen=True)
class TierResult:
    """One alert tier: its verdict and the evidence (burn rates, threshold, data quality)."""

    severity: str
    budget_percent: float
    long_window: str
    short_window: str
    burn_rate_threshold: float
    long_burn_rate: float
    short_burn_rate: float
    long_data_quality: str
    short_data_quality: str
    status: str  # firing | not_firing | unknown
    holds: bool | None  # True / False when decided, None when missing data leaves it open


@dataclass(frozen=True)
class SloResult:
    """One SLO's budget state; `as_dict()` is JSON-ready (NaN -> None, datetimes -> ISO 8601)."""

    service: str
    name: str
    budgeting_method: str
    objective_ratio: float
    error_budget_ratio: float
    period_start: datetime | None
    period_end: datetime | None
    period_total_minutes: int
    period: WindowResult
    sli: float
    data_quality: str
    error_budget_total: float  # allowed bad units over the period: (1 - objective) x valid
    error_budget_consumed: float  # bad units
    error_budget_remaining_ratio: float  # 1 - consumed / total; negative once overspent
    budget_exhausted: bool | None
    time_to_exhaustion_s: float
    time_to_exhaustion_basis: str  # projected | exhausted | not_burning | no_data
    alert_state: str
    windows: dict[str, WindowResult] = field(default_factory=dict)
    tiers: list[TierResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = _jsonable(self)
        assert isinstance(out, dict)
        return out


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _window_results(result: BatchResult, row: int) -> list[WindowResult]:
    """Every column of one row; each array row is converted with one `tolist()`, not per element."""
    params = result.params
    minutes = [*params.burn_windows_min, int(params.period_window_min[row])]
    columns = zip(
        minutes,
        result.sums.good[row].tolist(),
        result.sums.valid[row].tolist(),
        result.bad[row].tolist(),
        result.sums.valid_events[row].tolist(),
        result.sums.missing_minutes[row].tolist(),
        result.sli[row].tolist(),
        result.burn_rate[row].tolist(),
        result.data_quality[row].tolist(),
        strict=True,
    )
    return [
        WindowResult(
            window=window_name(m),
            window_minutes=m,
            good=float(good),
            valid=float(valid),
            bad=float(bad),
            valid_events=float(events),
            missing_minutes=int(missing),
            sli=sli,
            burn_rate=burn,
            data_quality=DATA_QUALITY[quality],
        )
        for m, good, valid, bad, events, missing, sli, burn, quality in columns
    ]


def _slo_result(result: BatchResult, row: int) -> SloResult:
    params = result.params
    n_burn = len(params.burn_windows_min)
    all_windows = _window_results(result, row)
    # The standard windows plus the ones this SLO's own tiers use: another SLO's custom tier in
    # the same batch must not change this SLO's result.
    own_tiers = ~np.isnan(params.tier_threshold[row])
    wanted = set(BURN_WINDOWS_MIN.values())
    wanted.update(params.burn_windows_min[c] for c in params.tier_long_col[row][own_tiers])
    wanted.update(params.burn_windows_min[c] for c in params.tier_short_col[row][own_tiers])
    windows = {w.window: w for w in all_windows[:n_burn] if w.window_minutes in wanted}
    period = all_windows[n_burn]
    tiers = []
    for j in range(params.tier_threshold.shape[1]):
        status = int(result.tier_status[row, j])
        if status == TIER_ABSENT:
            continue
        long_col, short_col = int(params.tier_long_col[row, j]), int(params.tier_short_col[row, j])
        tiers.append(
            TierResult(
                severity="page" if params.tier_page[row, j] else "ticket",
                budget_percent=float(params.tier_budget_percent[row, j]),
                long_window=params.window_names[long_col],
                short_window=params.window_names[short_col],
                burn_rate_threshold=float(params.tier_threshold[row, j]),
                long_burn_rate=float(result.tier_long_burn[row, j]),
                short_burn_rate=float(result.tier_short_burn[row, j]),
                long_data_quality=all_windows[long_col].data_quality,
                short_data_quality=all_windows[short_col].data_quality,
                status=TIER_STATUS[status],
                holds=None if status == TIER_UNKNOWN else status == TIER_FIRING,
            )
        )
    remaining = float(result.error_budget_remaining_ratio[row])
    tte = float(result.time_to_exhaustion_s[row])
    current_burn = windows[window_name(CURRENT_BURN_WINDOW_MIN)].burn_rate
    if math.isnan(remaining):
        basis, exhausted = "no_data", None
    elif remaining <= 0:
        basis, exhausted = "exhausted", True
    elif math.isnan(current_burn):
        basis, exhausted = "no_data", False
    elif current_burn == 0:
        basis, exhausted = "not_burning", False
    else:
        basis, exhausted = "projected", False
    bounds = params.period_bounds[row]
    return SloResult(
        service=params.services[row],
        name=params.names[row],
        budgeting_method=params.budgeting_methods[row],
        objective_ratio=float(params.objective_ratio[row]),
        error_budget_ratio=float(params.error_budget_ratio[row]),
        period_start=bounds[0] if bounds else None,
        period_end=bounds[1] if bounds else None,
        period_total_minutes=int(params.period_total_min[row]),
        period=period,
        sli=period.sli,
        data_quality=period.data_quality,
        error_budget_total=float(result.error_budget_total[row]),
        error_budget_consumed=period.bad,
        error_budget_remaining_ratio=remaining,
        budget_exhausted=exhausted,
        time_to_exhaustion_s=tte,
        time_to_exhaustion_basis=basis,
        alert_state=ALERT_STATES[result.alert_state[row]],
        windows=windows,
        tiers=tiers,
    )


# ---------------------------------------------------------------- convenience entry points


def evaluate_slo(
    spec: SloSpec,
    good: np.ndarray,
    valid: np.ndarray,
    present: np.ndarray | None = None,
    *,
    end_index: int | None = None,
    now: datetime | None = None,
) -> SloResult:
    """Evaluate one SLO from per-minute arrays.

    `end_index` (exclusive, default: the whole array) is the minute boundary being evaluated;
    `now` is the instant of that boundary, needed for calendar windows. Budgeting method
    (occurrences, timeslices, ratio_timeslices) follows the spec.
    """
    return evaluate_minutes(
        [spec],
        np.atleast_2d(good),
        np.atleast_2d(valid),
        None if present is None else np.atleast_2d(present),
        end_index=end_index,
        now=now,
    ).slo(0)


def evaluate_minutes(
    specs: Sequence[SloSpec],
    good: np.ndarray,
    valid: np.ndarray,
    present: np.ndarray | None = None,
    *,
    end_index: int | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Evaluate many SLOs from per-minute arrays shaped `(n_slos, n_minutes)` (row i = specs[i])."""
    params = batch_params(specs, now=now)
    good = np.asarray(good)
    valid = np.asarray(valid)
    end = good.shape[1] if end_index is None else end_index
    if all(method == "occurrences" for method in params.budgeting_methods):
        sums = window_sums(good, valid, present, end, params.window_minutes)
        return evaluate_batch(sums, params)
    # Timeslice SLOs count minutes, not events: convert row by row, then sum as usual.
    units_good = np.empty(good.shape, dtype=np.float64)
    units_valid = np.empty(good.shape, dtype=np.float64)
    events = np.empty(good.shape, dtype=np.float64)
    for row, spec in enumerate(specs):
        row_present = None if present is None else present[row]
        g, v, e = budget_units(
            good[row], valid[row], row_present, spec.budgeting_method, spec.timeslice_target
        )
        units_good[row], units_valid[row] = g, v
        events[row] = v if e is None else e
    sums = window_sums(units_good, units_valid, present, end, params.window_minutes, valid_events=events)
    return evaluate_batch(sums, params)
