"""The demo gains the end-to-end shelf-vision journey composite, evaluated, with history."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from slo.models.composites import Composite, CompositeMember, CompositeStatus, CompositeStatusPoint

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_the_journey_composite_across_edge_and_cloud():
    out = StringIO()
    call_command("seed_demo", days=2, stdout=out)
    journey = Composite.objects.get(service__name="shelf-vision", name="shelf-vision-journey")
    tiers = set(CompositeMember.objects.filter(composite=journey).values_list("slo__tier", flat=True))
    assert tiers == {"edge", "private_cloud"}
    status = CompositeStatus.objects.get(composite=journey)
    assert status.evaluated_at is not None and status.data_quality == "ok"
    assert 0 < status.sli <= 1
    points = CompositeStatusPoint.objects.filter(composite=journey)
    # every whole hour of the 2 days, plus the live evaluation's own point when it falls on 5 minutes
    hourly = sorted(points.exclude(at=status.evaluated_at).values_list("at", flat=True))
    assert 47 <= len(hourly) <= 48  # 47 when the seed ran in the first minute of an hour
    assert all(at.minute == 0 for at in hourly)
    assert all((b - a).total_seconds() == 3600 for a, b in zip(hourly, hourly[1:], strict=False))
    assert points.filter(at=status.evaluated_at).count() == (1 if status.evaluated_at.minute % 5 == 0 else 0)
    # the seeded incident on edge-latency three days ago is outside 2 days: history is burning slowly
    assert all(p.burn_rate_1h is not None for p in points)
    assert "demo composites: 1 created" in out.getvalue()

    call_command("seed_demo", days=2, stdout=StringIO())  # idempotent
    assert Composite.objects.count() == 1
