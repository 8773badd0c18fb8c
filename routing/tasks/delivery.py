"""Delivery tasks: thin adapters over routing.fleet.delivery.

Both are idempotent under acks_late: claims are conditional updates, and a second run finds
nothing due (or re-pushes a revision the gateway ACKs again without change).
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from routing.fleet.delivery import delivery_dispatch_due, fleet_reconcile


@shared_task(name="routing.tasks.delivery.dispatch_deliveries")
def dispatch_deliveries() -> dict[str, Any]:
    """Push every due delivery (also enqueued on commit of each new revision)."""
    return delivery_dispatch_due().as_dict()


@shared_task(name="routing.tasks.delivery.reconcile_fleet")
def reconcile_fleet() -> dict[str, Any]:
    """Queue re-delivery for drifted gateways, then push what is due."""
    created = fleet_reconcile()
    report = delivery_dispatch_due() if created else None
    return {"redelivered": len(created), "dispatch": report.as_dict() if report else None}


@shared_task(name="routing.tasks.delivery.model_skew")
def model_skew() -> int:
    """Model-version skew alert from the applied bundles of every gateway."""
    from django.utils import timezone

    from routing.fleet.skew import model_skew_feed

    return model_skew_feed(now=timezone.now().replace(second=0, microsecond=0))


@shared_task(name="routing.tasks.delivery.cache_alerts")
def cache_alerts() -> int:
    """Cache hit-rate drop and stale-hit alerts, with each service's thresholds from its cache
    config. Idempotent: alert states are claimed by conditional updates."""
    from django.utils import timezone

    from routing.fleet.cache_alerts import cache_alerts_feed

    return cache_alerts_feed(now=timezone.now().replace(second=0, microsecond=0))
