"""Demo: the end-to-end `shelf-vision` journey, one composite over its edge and cloud SLOs.

A shelf-vision request is answered at the edge or escalated to the private cloud; the journey is
healthy when both tiers are. Weights follow the demo traffic (the edge answers about four times as
many requests as the cloud). Idempotent: an existing composite is kept. Its history comes from the
members' seeded buckets, so the composite page is alive as soon as the periodic evaluation runs.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from slo.composites.evaluation import composite_evaluate
from slo.composites.services import composite_create
from slo.models import Slo
from slo.models.composites import Composite

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


def seed_demo(*, days: int, stdout: Any) -> None:
    created = seed_demo_composites()
    composites = list(Composite.objects.filter(archived_at__isnull=True).values_list("pk", flat=True))
    composite_evaluate(composite_ids=composites, now=timezone.now())
    stdout.write(f"demo composites: {created} created, {len(composites)} evaluated")
