"""Reading corrections: which ones applied to some SLOs over a time range, when and by whom.

Release gates, reports and the SLO page's budget chart show this list, so a budget that a
correction changed always says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slo.corrections.exclusion import effective_corrections
from slo.models.corrections import Correction
from slo.spec import SloSpec

# Spans listed per correction at most (a weekly window over a year is 52 of them).
MAX_SPANS = 60


def corrections_applied(
    *, slos: Sequence[tuple[int, dict[str, Any]]], start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Corrections in force that exclude minutes of these SLOs (`(id, spec document)`) within
    `[start, end)`: id, version, reason, scope, who wrote it, who approved it, when it took effect,
    the excluded spans (UTC, clipped, at most MAX_SPANS) and the excluded minutes per SLO."""
    parsed = {pk: SloSpec.model_validate(doc) for pk, doc in slos}
    found = effective_corrections(start, end)
    if not found:
        return []
    rows = {
        row.pk: row
        for row in Correction.objects.filter(pk__in=[pk for pk, _ in found]).only(
            "pk", "effective_version", "author_name", "approved_by_name", "applied_at", "approval_reason"
        )
    }
    out = []
    for pk, spec in found:
        hit = [
            slo_spec
            for slo_spec in parsed.values()
            if spec.scope.applies_to(service=slo_spec.service, name=slo_spec.name, tier=slo_spec.tier)
        ]
        if not hit:
            continue
        spans = list(spec.occurrences(start, end))
        if not spans:
            continue
        minutes = sum(hi - lo for lo, hi in spec.excluded_minutes(start, end))
        row = rows[pk]
        out.append(
            {
                "id": pk,
                "version": row.effective_version,
                "reason": spec.reason,
                "scope": spec.scope.model_dump(exclude_none=True, exclude_defaults=True),
                "recurrence": spec.recurrence.model_dump() if spec.recurrence else None,
                "author": row.author_name,
                "approved_by": row.approved_by_name or None,
                "approval_reason": row.approval_reason or None,
                "applied_at": row.applied_at.isoformat() if row.applied_at else None,
                "spans": [
                    {"start": max(lo, start).isoformat(), "end": min(hi, end).isoformat()}
                    for lo, hi in spans[:MAX_SPANS]
                ],
                "span_count": len(spans),
                "excluded_minutes": minutes,
                "slos": sorted(f"{s.service}/{s.name}" for s in hit),
            }
        )
    return out
