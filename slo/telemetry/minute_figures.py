"""Reads: the SLI figures of a service's SLOs in given minutes (for joining per-request records,
such as gateways' decision records, to the minute they fell in)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from slo.models.catalog import Slo
from slo.telemetry.selectors import minute_arrays

# Minutes read per call at most: one page of records spans few distinct minutes.
MAX_MINUTES = 200


def slo_minute_figures(*, service: str, tier: str, minutes: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
    """Per epoch minute, the figures of the service's live SLOs that cover `tier` (an SLO of that
    tier or of every tier): good, valid, ratio and `present`. A minute without telemetry is
    reported with present False and null figures: missing, never zero."""
    wanted = sorted(set(minutes))[:MAX_MINUTES]
    slos = list(
        Slo.objects.filter(service__name=service, archived_at__isnull=True, tier__in=[tier, ""])
        .order_by("name")
        .values("id", "name", "tier", "sli_kind", "objective")
    )
    out: dict[int, list[dict[str, Any]]] = {minute: [] for minute in wanted}
    if not slos or not wanted:
        return out
    ids = [slo["id"] for slo in slos]
    # One range read when the minutes are close together (the usual page), else one per minute.
    spans = [(wanted[0], wanted[-1] + 1)] if wanted[-1] - wanted[0] < 1440 else [(m, m + 1) for m in wanted]
    for first, stop in spans:
        good, valid, present = minute_arrays(ids, first, stop)
        for minute in wanted:
            if not first <= minute < stop:
                continue
            col = minute - first
            for row, slo in enumerate(slos):
                here = bool(present[row, col])
                g, v = int(good[row, col]), int(valid[row, col])
                out[minute].append(
                    {
                        "slo": slo["name"],
                        "tier": slo["tier"],
                        "sli_kind": slo["sli_kind"],
                        "objective": slo["objective"],
                        "present": here,
                        "good": min(g, v) if here else None,
                        "valid": v if here else None,
                        "ratio": (min(g, v) / v) if here and v else None,
                    }
                )
    return out
