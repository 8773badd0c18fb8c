"""Which SLO minutes the corrections in force exclude, for the layer that writes budget buckets.

`slo.budget.buckets.record_minutes` (every bucket write) and `slo.budget.feed` (the sync that
decides which minutes to write) both ask here, so an excluded minute is stored as zero budget
units (neither good nor bad) and every reader of the buckets (windows, burn rates, alerts,
reports, running totals) inherits the exclusion. One query per call; none of the work below runs
when no correction overlaps the minutes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from django.db.models import Q

from slo.corrections.spec import CorrectionSpec, merge_ranges
from slo.spec import SloSpec


@dataclass
class Exclusions:
    """Excluded epoch-minute ranges `[lo, hi)` per SLO id (merged, sorted)."""

    by_slo: dict[int, list[tuple[int, int]]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_slo)

    def contains(self, slo_id: int, minute: int) -> bool:
        ranges = self.by_slo.get(slo_id)
        if not ranges:
            return False
        k = bisect_right(ranges, (minute, float("inf"))) - 1
        return k >= 0 and ranges[k][0] <= minute < ranges[k][1]

    def mask(self, ids: Sequence[int], first: int, stop: int) -> np.ndarray:
        """Bool `(len(ids), stop - first)`: True where the minute is excluded."""
        out = np.zeros((len(ids), max(stop - first, 0)), dtype=bool)
        for row, slo_id in enumerate(ids):
            for lo, hi in self.by_slo.get(slo_id, ()):
                a, b = max(lo, first), min(hi, stop)
                if a < b:
                    out[row, a - first : b - first] = True
        return out


def _minute(epoch_minute: int) -> datetime:
    return datetime.fromtimestamp(epoch_minute * 60, tz=UTC)


def effective_corrections(lo: datetime, hi: datetime) -> list[tuple[int, CorrectionSpec]]:
    """(id, effective spec) of every correction in force whose span overlaps `[lo, hi)`."""
    from slo.models.corrections import Correction

    rows = (
        Correction.objects.filter(effective_spec__isnull=False, deleted_at__isnull=True, span_start__lt=hi)
        .filter(Q(span_end__isnull=True) | Q(span_end__gt=lo))
        .order_by("pk")
        .values_list("pk", "effective_spec")
    )
    return [(pk, CorrectionSpec.model_validate(doc)) for pk, doc in rows]


def exclusions_for(specs: Mapping[int, SloSpec], first: int, stop: int) -> Exclusions:
    """The excluded minutes in `[first, stop)` (epoch minutes) of the SLOs in `specs`."""
    if stop <= first or not specs:
        return Exclusions()
    lo, hi = _minute(first), _minute(stop)
    corrections = effective_corrections(lo, hi)
    if not corrections:
        return Exclusions()
    out: dict[int, list[tuple[int, int]]] = {}
    for _pk, correction in corrections:
        ranges: list[tuple[int, int]] | None = None
        for slo_id, spec in specs.items():
            if not correction.scope.applies_to(service=spec.service, name=spec.name, tier=spec.tier):
                continue
            if ranges is None:
                ranges = correction.excluded_minutes(lo, hi)
            if ranges:
                out.setdefault(slo_id, []).extend(ranges)
    return Exclusions({slo_id: merge_ranges(r) for slo_id, r in out.items()})


def zero_excluded(
    ids: list[int],
    minutes: list[datetime],
    goods: list[float],
    valids: list[float],
    events: list[float],
    specs: Mapping[int, SloSpec],
    exclusions: Exclusions | None,
) -> None:
    """Zero, in place, the budget units of the minutes (rows of parallel lists) that a correction
    in force excludes; `exclusions` None: look them up for the rows' span."""
    epochs = [int(m.timestamp()) // 60 for m in minutes]
    if exclusions is None:
        exclusions = exclusions_for({i: specs[i] for i in set(ids)}, min(epochs), max(epochs) + 1)
    if not exclusions:
        return
    for k, (slo_id, minute) in enumerate(zip(ids, epochs, strict=True)):
        if exclusions.contains(slo_id, minute):
            goods[k] = valids[k] = events[k] = 0.0
