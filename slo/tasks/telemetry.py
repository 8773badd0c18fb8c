"""Telemetry tasks: thin adapters over the telemetry services (`slo.telemetry.pull`, `.retention`,
`.storage`): ids in, services do the work.

Idempotent under acks_late: a pull claims its source with a conditional update and its upserts
replace, so a re-delivered task either finds the source claimed or re-pulls the same minutes.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from slo.telemetry import partitions, pull, retention, storage

logger = logging.getLogger(__name__)


@shared_task(name="slo.tasks.telemetry.pull_sources")
def pull_sources() -> int:
    """Beat, every minute: one pull task per enabled source nobody is pulling. Returns tasks sent."""
    due = pull.telemetry_sources_due()
    for source_id in due:
        pull_source.delay(source_id)
    return len(due)


@shared_task(name="slo.tasks.telemetry.pull_source")
def pull_source(source_id: int) -> dict[str, Any]:
    """Pull one source; the result (claimed, ok, counts, error) goes to the task result."""
    result = pull.telemetry_source_pull(source_id=source_id)
    return {
        "source_id": result.source_id,
        "claimed": result.claimed,
        "ok": result.ok,
        "slos": result.slos,
        "slo_minutes": result.slo_minutes,
        "present_minutes": result.present_minutes,
        "error": result.error,
    }


@shared_task(name="slo.tasks.telemetry.enforce_retention")
def enforce_retention() -> dict[str, int]:
    """Beat, hourly: delete telemetry older than the retention settings."""
    return retention.telemetry_retention_enforce()


@shared_task(name="slo.tasks.telemetry.ensure_partitions")
def ensure_partitions() -> dict[str, int]:
    """Beat, hourly: create the minute tables' day partitions for the coming days ahead of time."""
    return partitions.telemetry_partitions_ensure()


@shared_task(name="slo.tasks.telemetry.rollup_hours")
def rollup_hours() -> int:
    """After ingests (enqueued on commit) and every minute as a sweep: recompute pending hours."""
    return storage.telemetry_rollup_pending()
