"""recommend_threshold: the lowest semantic-cache similarity threshold that is still safe.

Each sample is one lookup replayed offline: the similarity of the best cached neighbour and
whether serving that neighbour's answer would have been correct. At threshold t every sample with
similarity >= t is a hit; the false-hit rate is the share of those hits that were wrong (what
users would see), the hit rate is hits over all lookups.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

# the thresholds people actually choose between, for the table
_GRID = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
DEFAULT_MIN_SAMPLES = 30


@dataclass(frozen=True, slots=True)
class ThresholdRow:
    threshold: float
    hits: int
    false_hits: int
    hit_rate: float
    false_hit_rate: float | None  # None when nothing hits at this threshold


@dataclass(frozen=True, slots=True)
class Recommendation:
    status: Literal["ok", "insufficient_samples", "no_safe_threshold"]
    threshold: float | None
    expected_hit_rate: float
    false_hit_rate: float | None
    # per 1,000 lookups, when cost_saved_per_hit is given
    cost_saved: float | None
    table: tuple[ThresholdRow, ...]
    samples: int
    reason: str


def recommend_threshold(
    samples: Iterable[tuple[float, bool]],
    max_false_hit_rate: float,
    cost_saved_per_hit: float | None = None,
    *,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Recommendation:
    """The lowest threshold t such that the false-hit rate at t, and at every higher observed
    threshold, is at most `max_false_hit_rate`.

    Requiring it at every higher threshold too keeps one lucky dip in a noisy curve from being
    recommended. Fewer than `min_samples` samples gives `insufficient_samples` and no threshold.
    """
    if not 0 <= max_false_hit_rate <= 1:
        raise ValueError("max_false_hit_rate must be within [0, 1]")
    pairs = sorted((float(sim), bool(ok)) for sim, ok in samples)
    pairs = [(sim, ok) for sim, ok in pairs if not math.isnan(sim)]
    total = len(pairs)
    similarities = [sim for sim, _ in pairs]
    # wrong_at_or_above[i]: wrong answers among pairs[i:]
    wrong_at_or_above = [0] * (total + 1)
    for i in range(total - 1, -1, -1):
        wrong_at_or_above[i] = wrong_at_or_above[i + 1] + (not pairs[i][1])

    def row(threshold: float) -> ThresholdRow:
        first = bisect.bisect_left(similarities, threshold)
        hits = total - first
        false_hits = wrong_at_or_above[first]
        return ThresholdRow(
            threshold, hits, false_hits, hits / total if total else 0.0, false_hits / hits if hits else None
        )

    if total < min_samples:
        return Recommendation(
            "insufficient_samples",
            None,
            0.0,
            None,
            None,
            tuple(row(t) for t in _GRID) if total else (),
            total,
            f"{total} samples; at least {min_samples} are needed to recommend a threshold",
        )

    chosen: ThresholdRow | None = None
    for threshold in sorted(set(similarities), reverse=True):
        candidate = row(threshold)
        assert candidate.false_hit_rate is not None  # the threshold is an observed similarity
        if candidate.false_hit_rate > max_false_hit_rate:
            break
        chosen = candidate
    table = sorted({*(row(t) for t in _GRID), *((chosen,) if chosen else ())}, key=lambda r: r.threshold)
    if chosen is None:
        return Recommendation(
            "no_safe_threshold",
            None,
            0.0,
            None,
            None,
            tuple(table),
            total,
            f"even the most similar samples exceed the false-hit target of {max_false_hit_rate:g}",
        )
    saved = None if cost_saved_per_hit is None else 1000 * chosen.hit_rate * cost_saved_per_hit
    return Recommendation(
        "ok",
        chosen.threshold,
        chosen.hit_rate,
        chosen.false_hit_rate,
        saved,
        tuple(table),
        total,
        f"lowest threshold whose false-hit rate stays <= {max_false_hit_rate:g} at every higher threshold",
    )
