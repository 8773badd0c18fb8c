"""Decision-record tasks: thin adapters over routing.fleet.decisions."""

from __future__ import annotations

from celery import shared_task

from routing.fleet.decisions import decision_records_retention_enforce


@shared_task(name="routing.tasks.decisions.enforce_retention")
def enforce_retention() -> int:
    """Beat, hourly: delete decision records past DECISION_RECORD_RETENTION_DAYS (idempotent)."""
    return decision_records_retention_enforce()
