"""Quantiles of cumulative histograms, the way Prometheus' `histogram_quantile` computes them."""

from __future__ import annotations

import math
from collections.abc import Mapping


def histogram_quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram `{upper bound: count}` (with +Inf), in the bounds'
    unit, interpolated linearly inside its bucket (the lowest bucket starts at 0). None without
    observations; the highest finite bound when the quantile falls in the +Inf bucket (the true
    value is only known to be above it)."""
    bounds = sorted(cumulative)
    if not bounds:
        return None
    total = cumulative[bounds[-1]]
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count <= lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound
