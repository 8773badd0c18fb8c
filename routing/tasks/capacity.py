"""Capacity tasks: thin adapters over routing.capacity (docs/capacity.md)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="routing.tasks.capacity.evaluate_capacity")
def evaluate_capacity() -> dict[str, Any]:
    """Beat, every CAPACITY_WINDOW_S: scaling recommendations and device-health alerts."""
    from django.utils import timezone

    from routing.capacity.services import capacity_evaluate

    return capacity_evaluate(now=timezone.now()).as_dict()


@shared_task(name="routing.tasks.capacity.health_retention")
def health_retention() -> int:
    """Beat, hourly: delete gateway health samples past CAPACITY_HEALTH_RETENTION_DAYS."""
    from django.utils import timezone

    from routing.capacity.health import health_retention_enforce

    return health_retention_enforce(now=timezone.now())


@shared_task(name="routing.tasks.capacity.budget_responses")
def budget_responses() -> int:
    """Beat, every 5 minutes: propose the safer chain for services burning fast (docs/capacity.md)."""
    from routing.capacity.responses import budget_responses_propose

    return len(budget_responses_propose())
