"""Routing's contributions to slo's error-budget reports (registered from `RoutingConfig.ready`).

slo never imports routing: it exposes a registry (`slo.reports.sections`) and we fill it here with
the releases of a period and the names and regions of gateways (telemetry source `gateway:<id>`).
Everything is read as of the period's end (state, gates and rollbacks before it), so regenerating
a past period's report later gives the same numbers.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q


def releases_in_period(*, services: list[str], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Releases of these services submitted or finished in `[start, end)`, with their state at
    `end`, gate outcomes and rollbacks up to `end`."""
    from routing.models.releases import GateResult, Release, ReleaseRollback, ReleaseTransition

    releases = (
        Release.objects.filter(service__name__in=services)
        .filter(
            Q(submitted_at__gte=start, submitted_at__lt=end) | Q(finished_at__gte=start, finished_at__lt=end)
        )
        .select_related("service")
        .prefetch_related(
            Prefetch(
                "transitions", queryset=ReleaseTransition.objects.filter(at__lt=end).order_by("at", "id")
            ),
            Prefetch("gate_results", queryset=GateResult.objects.filter(at__lt=end).order_by("at", "id")),
            Prefetch("rollbacks", queryset=ReleaseRollback.objects.filter(at__lt=end).order_by("at", "id")),
        )
        .order_by("submitted_at", "id")
    )
    out = []
    for release in releases:
        transitions = list(release.transitions.all())
        gates = list(release.gate_results.all())
        out.append(
            {
                "id": release.pk,
                "service": release.service.name,
                "title": release.title,
                "kind": release.kind,
                "author": release.author_name,
                "state": transitions[-1].to_state if transitions else release.state,
                "submitted_at": release.submitted_at.isoformat() if release.submitted_at else None,
                "finished_at": release.finished_at.isoformat()
                if release.finished_at and release.finished_at < end
                else None,
                "gates": dict(sorted(Counter(g.outcome for g in gates).items())),
                "failed_gates": [
                    {"gate": g.gate, "stage": g.stage, "outcome": g.outcome, "at": g.at.isoformat()}
                    for g in gates
                    if g.outcome in ("fail", "inconclusive")
                ],
                "rollbacks": [
                    {"trigger": r.trigger, "at": r.at.isoformat(), "reason": r.reason, "actor": r.actor_name}
                    for r in release.rollbacks.all()
                ],
            }
        )
    return out


def gateway_sources(sources: list[str]) -> dict[str, dict[str, str]]:
    """`gateway:<id>` -> the gateway's name and region."""
    from routing.models.fleet import Gateway

    ids = [
        int(s.split(":", 1)[1]) for s in sources if s.startswith("gateway:") and s.split(":", 1)[1].isdigit()
    ]
    return {
        f"gateway:{pk}": {"name": name, "region": region}
        for pk, name, region in Gateway.objects.filter(pk__in=ids).values_list("pk", "name", "region")
    }


def register() -> None:
    from slo.reports.sections import register_section, register_source_resolver

    register_section("releases", releases_in_period)
    register_source_resolver(gateway_sources)
