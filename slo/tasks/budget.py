"""Budget engine tasks: thin adapters that take ids (or an ISO instant) and call services.

Every task is idempotent (acks_late re-runs it after a crash): evaluation claims status rows per
instant, notifications claim outbox rows, rollups are upserts.
"""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from slo.budget import alerts, notify
from slo.budget.evaluation import CHUNK_SIZE, history_prune, slo_evaluate

logger = logging.getLogger(__name__)

# A sync stops starting transactions after this long (well before the soft time limit); the next
# run continues.
SYNC_MAX_SECONDS = 120.0


def _instant(now_iso: str | None) -> datetime:
    return datetime.fromisoformat(now_iso) if now_iso else timezone.now()


@shared_task(name="slo.budget.evaluate_all")
def budget_evaluate_all(now_iso: str | None = None, chunk_size: int = CHUNK_SIZE) -> int:
    """The evaluation cycle of one instant: sync every minute written so far, then store the
    instant's chunks and fan out one `budget_evaluate_claimed` per chunk. Returns the number of
    active SLOs (0 when nothing was started). Each task claims chunks until none is left
    (`slo.budget.chunks`), so workers share them, none is evaluated twice, and tasks that find
    nothing left return at once.

    Beat runs it every 10 s without an instant (slo/schedules.py); it then starts the cycle of the
    current minute instant once, BUDGET_EVALUATION_GRACE_S after the minute ended (so the minute
    the gateways just pushed is in it): earlier, it schedules itself for that moment; once the
    instant's chunks exist, it does nothing. So a cycle starts within seconds of the gateways'
    pushes rather than up to a minute later at whatever phase beat started in."""
    from slo.budget.buckets import floor_minute
    from slo.budget.chunks import evaluation_chunks_prepare
    from slo.budget.feed import budget_sync_pending

    if now_iso is None:
        now, early = cycle_instant(timezone.now(), settings.BUDGET_EVALUATION_GRACE_S)
        if _cycle_started(now):
            return 0
        if early > 0:
            # one scheduled start per instant (beat asks every 10 s): a cache key claims it
            if cache.add(f"slo:budget:cycle:{now.isoformat()}", 1, timeout=180):
                budget_evaluate_all.apply_async(
                    kwargs={"now_iso": now.isoformat(), "chunk_size": chunk_size}, countdown=early
                )
            return 0
    else:
        now = floor_minute(_instant(now_iso))
    # Every minute written before this point reaches the buckets first (waiting for a sync in
    # progress rather than evaluating without its minutes); later ones go to the next instant.
    budget_sync_pending(now=timezone.now(), max_seconds=SYNC_MAX_SECONDS, wait=True)
    chunks, slos = evaluation_chunks_prepare(now=now, chunk_size=chunk_size)
    for _ in range(chunks):
        budget_evaluate_claimed.delay(now.isoformat())
    return slos


def cycle_instant(wall: datetime, grace_s: float) -> tuple[datetime, float]:
    """(the instant whose cycle is due at `wall`: the minute boundary before it, seconds until that
    cycle may start: positive while within `grace_s` of the boundary, else 0)."""
    from slo.budget.buckets import floor_minute

    now = floor_minute(wall)
    return now, max(0.0, grace_s - (wall - now).total_seconds())


def _cycle_started(now: datetime) -> bool:
    from slo.models.budget import EvaluationChunk

    return EvaluationChunk.objects.filter(at=now).exists()


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
