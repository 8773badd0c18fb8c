"""Demo: the end-to-end `shelf-vision` journey, one composite over its edge and cloud SLOs.

A shelf-vision request is answered at the edge or escalated to the private cloud; the journey is
healthy when both tiers are. Weights follow the demo traffic (the edge answers about four times as
many requests as the cloud). Idempotent: an existing composite is kept. Its history comes from the
members' seeded buckets, so the composite page is alive as soon as the periodic evaluation runs.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from slo.budget.buckets import HOUR, ceil_hour
from slo.composites.evaluation import composite_compute, composite_evaluate, status_point
from slo.composites.services import composite_create
from slo.composites.spec import CompositeSpec
from slo.models import Slo
from slo.models.composites import Composite, CompositeStatusPoint

JOURNEY: dict[str, Any] = {
    "name": "shelf-vision-journey",
    "service": "shelf-vision",
    "display_name": "Shelf vision, end to end (edge and cloud)",
    "description": "One health figure for a shelf-vision request, answered at the edge or escalated to the cloud.",
    "aggregation": "weighted_average",
    "objective": 99.0,
    "window": {"type": "rolling", "days": 28},
    "members": [
        {"slo": "shelf-vision/edge-latency", "weight": 4},
        {"slo": "shelf-vision/edge-availability", "weight": 4},
        {"slo": "shelf-vision/cloud-latency", "weight": 1},
        {"slo": "shelf-vision/fallback-success", "weight": 1},
    ],
}


def seed_demo_composites(*, actor: Any = "demo-seed") -> int:
    """Create the journey composite when its member SLOs exist and it does not; returns 1 or 0."""
    if Composite.objects.filter(service__name=JOURNEY["service"], name=JOURNEY["name"]).exists():
        return 0
    refs = [m["slo"].split("/", 1) for m in JOURNEY["members"]]
    present = {
        (s, n) for s, n in Slo.objects.filter(archived_at__isnull=True).values_list("service__name", "name")
    }
    if not all(tuple(ref) in present for ref in refs):
        return 0
    composite_create(actor=actor, data=JOURNEY, note="demo seed")
    return 1


# The composite page's charts show the last week; older history would never be drawn.
HISTORY_DAYS = 7


def composite_history_backfill(*, composite: Composite, start: datetime, end: datetime) -> int:
    """History points at every whole hour in [start, end), as the periodic evaluation would have
    written them (points only: no status, no alert transitions about the past). Idempotent."""
    spec = CompositeSpec.model_validate(composite.spec)
    points = []
    at = ceil_hour(start)
    while at < end:
        document, result = composite_compute(composite, spec, at)
        points.append(status_point(composite, document, result, at))
        at += HOUR
    CompositeStatusPoint.objects.bulk_create(points, ignore_conflicts=True)
    return len(points)


def seed_demo(*, days: int, stdout: Any) -> None:
    created = seed_demo_composites()
    now = timezone.now()
    composites = list(Composite.objects.filter(archived_at__isnull=True))
    points = 0
    if created and days > 0:
        journey = next(c for c in composites if c.name == JOURNEY["name"])
        points = composite_history_backfill(
            composite=journey, start=now - timedelta(days=min(days, HISTORY_DAYS)), end=now
        )
    composite_evaluate(composite_ids=[c.pk for c in composites], now=now)
    stdout.write(f"demo composites: {created} created, {points} history points, {len(composites)} evaluated")
