"""The demo's status correction: a weekly maintenance window, Sundays 02:00-04:00 Europe/Berlin, on
the private-cloud GPU nodes behind shelf-vision's cloud-latency SLO. Seeded before the demo history
so the history's budget buckets already leave those minutes out (idempotent)."""

from __future__ import annotations

from typing import Any

from slo.corrections.services import correction_create
from slo.models.catalog import Slo
from slo.models.corrections import Correction

DEMO_REASON = "weekly maintenance of the private-cloud GPU nodes (driver and firmware updates)"
DEMO_CORRECTION = {
    "reason": DEMO_REASON,
    "scope": {"slos": ["shelf-vision/cloud-latency"]},
    "start": "2026-01-04T02:00:00+01:00",  # a Sunday; the rule counts from here
    "recurrence": {"rrule": "FREQ=WEEKLY;BYDAY=SU", "timezone": "Europe/Berlin", "duration_minutes": 120},
}


def seed_demo(*, days: int, stdout: Any) -> None:
    if not Slo.objects.filter(service__name="shelf-vision", name="cloud-latency").exists():
        return  # not the demo catalog
    if Correction.objects.filter(spec__reason=DEMO_REASON).exclude(state="deleted").exists():
        stdout.write("demo corrections: already seeded")
        return
    correction = correction_create(actor="demo-seed", data=DEMO_CORRECTION, note="demo maintenance window")
    stdout.write(f"demo corrections: correction {correction.pk} (Sundays 02:00-04:00 Europe/Berlin) created")
