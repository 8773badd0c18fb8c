"""The composite SLO math: member window sums in, the composite's window sums and each member's
contribution out; budget, burn rates and alert tiers then come from the budget engine itself.

Pure (numpy only). Definitions, per window w (each burn-rate window and the composite's period),
from the members' exact counts in budget units (good_i, valid_i) and raw valid events (events_i):

- A member *has data* in w when valid_i > 0. Its bad fraction is bf_i = (valid_i - good_i) / valid_i.
  A member without data is listed as such; it is never counted as good (nor as bad).
- weighted_average: bf = sum_{i with data} w_i * bf_i / sum_{i with data} w_i. A member's
  contribution is w_i * bf_i / sum_{i with data} w_i, so the contributions add up to bf.
- least_healthy: bf = max_{i with data} bf_i, the member with the highest burn rate against the
  composite's objective (ties: the first listed). Its contribution is bf; the others' are 0.
- No member with data: the window has no data (NaN), never 100%.
- The composite's window sums, in *journey events*: valid = sum of events_i over the members with
  data, good = valid * (1 - bf). So the engine's SLI is 1 - bf, its burn rate is
  bf / (1 - objective), its error budget is (1 - objective) x journey events, and its traffic
  floor (`min_valid_events`) applies to the journey's events.
- Missing minutes of the composite are the most any member lacks in that window.

Members' own objectives do not enter: the composite measures the journey against its own objective.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from slo.engine import BatchParams, BatchResult, WindowSums, evaluate_batch


@dataclass(frozen=True)
class CompositeSums:
    """The composite's window sums `(1, n_windows)` and the per-member breakdown `(n_members, n_windows)`."""

    sums: WindowSums
    member: WindowSums  # the members' own sums, as given
    bad_fraction: np.ndarray  # (n_windows,) NaN without data
    member_bad_fraction: np.ndarray  # (n_members, n_windows) NaN where the member has no data
    member_has_data: np.ndarray  # (n_members, n_windows) bool
    contribution: np.ndarray  # (n_members, n_windows) share of bf; NaN where the member has no data
    deciding_member: np.ndarray  # (n_windows,) index of the largest contribution, -1 without data


def composite_sums(
    member: WindowSums, weights: Sequence[float] | np.ndarray, aggregation: str
) -> CompositeSums:
    """The composite's window sums from its members' window sums (row i = member i)."""
    good = np.atleast_2d(np.asarray(member.good, dtype=np.float64))
    valid = np.atleast_2d(np.asarray(member.valid, dtype=np.float64))
    events = np.atleast_2d(np.asarray(member.valid_events, dtype=np.float64))
    missing = np.atleast_2d(np.asarray(member.missing_minutes, dtype=np.int64))
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (good.shape[0],):
        raise ValueError(f"one weight per member: {good.shape[0]} members, weights shaped {w.shape}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and > 0")
    if aggregation not in ("weighted_average", "least_healthy"):
        raise ValueError(f"unknown aggregation {aggregation!r}")

    has_data = valid > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # Good is capped at valid (as the engine does), so a bad fraction is within [0, 1].
        member_bf = np.where(
            has_data, (valid - np.minimum(good, valid)) / np.where(has_data, valid, 1), np.nan
        )
    any_data = has_data.any(axis=0)
    if aggregation == "weighted_average":
        weight_with_data = np.where(has_data, w[:, None], 0.0).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            contribution = np.where(
                has_data,
                w[:, None] * np.nan_to_num(member_bf) / np.where(any_data, weight_with_data, 1),
                np.nan,
            )
        bad_fraction = np.where(any_data, np.nansum(np.where(has_data, contribution, 0.0), axis=0), np.nan)
        ranked = np.where(has_data, contribution, -np.inf)
    else:
        ranked = np.where(has_data, member_bf, -np.inf)
        bad_fraction = np.where(any_data, ranked.max(axis=0, initial=-np.inf), np.nan)
        winner = np.argmax(ranked, axis=0)  # first maximum: ties go to the first listed member
        contribution = np.where(has_data, 0.0, np.nan)
        rows = np.arange(good.shape[0])[:, None]
        contribution = np.where((rows == winner[None, :]) & has_data, member_bf, contribution)
    deciding = np.where(any_data, np.argmax(ranked, axis=0), -1)

    journey_events = np.where(has_data, events, 0.0).sum(axis=0)
    # A member with budget units but no raw events cannot happen from the buckets (a slice needs
    # traffic); journey events of at least 1 keep such a window "with data" rather than dividing by 0.
    composite_valid = np.where(any_data, np.maximum(journey_events, 1e-300), 0.0)
    composite_good = np.where(any_data, composite_valid * (1.0 - np.nan_to_num(bad_fraction)), 0.0)
    sums = WindowSums(
        good=composite_good[None, :],
        valid=composite_valid[None, :],
        valid_events=journey_events[None, :],
        missing_minutes=missing.max(axis=0)[None, :],
    )
    return CompositeSums(
        sums=sums,
        member=WindowSums(good=good, valid=valid, valid_events=events, missing_minutes=missing),
        bad_fraction=bad_fraction,
        member_bad_fraction=member_bf,
        member_has_data=has_data,
        contribution=contribution,
        deciding_member=deciding,
    )


def evaluate_composite(
    member: WindowSums, weights: Sequence[float] | np.ndarray, aggregation: str, params: BatchParams
) -> tuple[CompositeSums, BatchResult]:
    """The composite's sums and the budget engine's verdict on them (`params` for one row: the
    composite's objective, window and alert tiers; the member sums in the same columns)."""
    if params.n_slos != 1:
        raise ValueError("params must describe the one composite")
    parts = composite_sums(member, weights, aggregation)
    return parts, evaluate_batch(parts.sums, params)
