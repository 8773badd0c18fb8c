"""Budget engine tasks: thin adapters that take ids (or an ISO instant) and call services.

Every task is idempotent (acks_late re-runs it after a crash): evaluation claims status rows per
instant, notifications claim outbox rows, rollups are upserts.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from slo.budget import alerts, notify
from slo.budget.evaluation import CHUNK_SIZE, history_prune, slo_evaluate

logger = logging.getLogger(__name__)


def _instant(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else timezone.now()


@shared_task(name="slo.budget.evaluate_all")
def budget_evaluate_all(now_iso: str | None = None, chunk_size: int = CHUNK_SIZE) -> int:
    """Fan out: store the instant's chunks, then one `budget_evaluate_claimed` per chunk. Returns
    the number of active SLOs. Each task
    claims chunks until none is left (`slo.budget.chunks`), so workers share them, none is
    evaluated twice, and tasks that find nothing left return at once."""
    from slo.budget.chunks import evaluation_chunks_prepare

    now = _instant(now_iso).replace(second=0, microsecond=0)
    chunks, slos = evaluation_chunks_prepare(now=now, chunk_size=chunk_size)
    for _ in range(chunks):
        budget_evaluate_claimed.delay(now.isoformat())
    return slos


@shared_task(name="slo.budget.evaluate_claimed")
def budget_evaluate_claimed(now_iso: str) -> int:
    from slo.budget.chunks import slo_evaluate_claimed

    report = slo_evaluate_claimed(now=_instant(now_iso))
    logger.info("evaluated %s SLOs at %s (claimed chunks)", report.evaluated, report.now.isoformat())
    return report.evaluated


@shared_task(name="slo.budget.evaluate_chunk")
def budget_evaluate_chunk(slo_ids: list[int], now_iso: str) -> int:
    report = slo_evaluate(slo_ids=slo_ids, now=_instant(now_iso))
    logger.info(
        "evaluated %s of %s SLOs at %s: %s transitions, %s notifications",
        report.evaluated,
        len(slo_ids),
        report.now.isoformat(),
        report.transitions,
        report.notifications,
    )
    return report.evaluated


@shared_task(name="slo.budget.notification_send")
def notification_send(notification_id: int) -> str:
    return notify.notification_send(notification_id=notification_id, now=timezone.now())


@shared_task(name="slo.budget.notifications_sweep")
def notifications_sweep() -> dict[str, int]:
    """Send what is due: retries, and anything whose enqueue was lost."""
    return notify.notifications_send_due(now=timezone.now())


@shared_task(name="slo.budget.renotify")
def renotify() -> int:
    return alerts.alerts_renotify(now=timezone.now())


@shared_task(name="slo.budget.alertmanager_repost")
def alertmanager_repost() -> dict[str, int]:
    """Re-post firing (and recently resolved) alerts to Alertmanager channels so they stay active."""
    from slo.budget.alertmanager import alertmanager_repost as repost

    return repost(now=timezone.now())


@shared_task(name="slo.budget.history_prune")
def status_history_prune() -> int:
    """Thin the status history and enforce bucket retention."""
    from slo.budget.buckets import prune_buckets

    now = timezone.now()
    return history_prune(now=now) + sum(prune_buckets(now=now).values())


SYNC_MAX_SECONDS = 120.0


@shared_task(name="slo.budget.sync")
def budget_sync(minutes: int | None = None) -> dict[str, int]:
    """Copy the telemetry minutes ingests recorded as written into the budget buckets (only what
    changed), whatever their age. `minutes` is ignored: beat entries made when the sync re-read a
    fixed window still pass it, and the recorded spans now say what to read."""
    from slo.budget.feed import budget_sync_pending

    # Stop starting transactions well before the soft time limit; the next run continues.
    done = budget_sync_pending(now=timezone.now(), max_seconds=SYNC_MAX_SECONDS)
    return {"spans": done.spans, "minutes_read": done.minutes_read, "minutes_written": done.minutes_written}


@shared_task(name="slo.budget.cost_rollups")
def cost_rollups(resolution: str = "hour") -> int:
    """Cost rollups of the last complete hour (or UTC day)."""
    from datetime import timedelta

    from slo.budget.services import cost_rollups_compute

    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    if resolution == "day":
        now = now.replace(hour=0)
    start = now - (timedelta(hours=1) if resolution == "hour" else timedelta(days=1))
    return cost_rollups_compute(bucket_start=start, resolution=resolution)
