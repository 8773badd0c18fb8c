"""Canary analysis of a baking wave: the service's criteria, and one measurement of the wave's
gateways against the rest over the newest complete minutes (routing.releases.canary judges it).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from routing.models.releases import Release
from routing.releases import canary, selectors
from slo.models import Slo

# Canary analysis defaults beyond the pure criteria: minutes per measurement, and how long to wait
# for gateways to push a finished minute before it is analysed.
ANALYSIS_WINDOW_MINUTES = 5
ANALYSIS_LAG_MINUTES = 2


def canary_settings(*, release: Release) -> tuple[canary.Criteria, int, int]:
    """(criteria, window minutes, lag minutes) from the service's release settings."""
    raw = dict(selectors.release_settings_for(service_id=release.service_id).canary or {})
    window = int(raw.pop("window_minutes", ANALYSIS_WINDOW_MINUTES))
    lag = int(raw.pop("lag_minutes", ANALYSIS_LAG_MINUTES))
    return canary.Criteria.from_mapping(raw), max(1, window), max(0, lag)


def canary_measure(*, release: Release, now: datetime) -> tuple[canary.Measurement, dict[str, Any]] | None:
    """One canary measurement over the newest complete minutes not analysed yet, or None when no new
    minute has completed (with the lag for gateways to push it)."""
    criteria, window, lag = canary_settings(release=release)
    bake_start = release.bake_started_at or now
    first_bake, _ = selectors.minute_bounds(bake_start, bake_start)
    _, stop = selectors.minute_bounds(bake_start, now - timedelta(minutes=lag))
    done = first_bake
    if release.analysed_until is not None:
        done = max(first_bake, -(-int(release.analysed_until.timestamp()) // 60))
    if stop <= done:
        return None  # no minute completed (and pushed) since the last measurement
    first = max(first_bake, stop - window)
    targets = selectors.wave_targets(release_id=release.pk, wave=release.current_wave)
    canary_ids = [t.gateway_id for t in targets]
    # A tier-scoped SLO is measured from gateways of that tier only: a wave with none of them says
    # nothing about it (not "no traffic"). Page-level burn on it still rolls the release back.
    canary_tiers = {t.gateway.tier for t in targets}
    slos, not_applicable = [], []
    for slo in Slo.objects.filter(service=release.service, archived_at__isnull=True).order_by("name"):
        if not slo.tier or slo.tier in canary_tiers:
            slos.append(slo)
        else:
            not_applicable.append(
                {"slo": slo.name, "tier": slo.tier, "reason": f"no gateway of this wave runs on {slo.tier}"}
            )
    baseline_ids = selectors.baseline_gateway_ids(release=release, exclude=canary_ids)
    canary_stats = selectors.group_stats(
        service=release.service.name, slos=slos, gateway_ids=canary_ids, first_minute=first, stop_minute=stop
    )
    baseline_stats = (
        selectors.group_stats(
            service=release.service.name,
            slos=slos,
            gateway_ids=baseline_ids,
            first_minute=first,
            stop_minute=stop,
        )
        if baseline_ids
        else None
    )
    measurement = canary.measure(canary_stats, baseline_stats, criteria)
    from slo.telemetry.selectors import minute_datetime

    evidence = {
        **measurement.as_dict(),
        "window": {"start": minute_datetime(first).isoformat(), "end": minute_datetime(stop).isoformat()},
        "canary_gateways": canary_ids,
        "baseline_gateways": baseline_ids,
        "criteria": criteria.as_dict(),
        "slos_not_applicable": not_applicable,
        "canary": {
            "requests": canary_stats.requests,
            "errors": canary_stats.errors,
            "p95_ms": canary_stats.p95_ms,
            "slos": [vars(s) for s in canary_stats.slos],
        },
        "baseline": None
        if baseline_stats is None
        else {
            "requests": baseline_stats.requests,
            "errors": baseline_stats.errors,
            "p95_ms": baseline_stats.p95_ms,
            "slos": [vars(s) for s in baseline_stats.slos],
        },
    }
    return measurement, {"evidence": evidence, "stop": minute_datetime(stop)}
