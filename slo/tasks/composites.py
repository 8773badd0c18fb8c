"""Composite SLO evaluation task: a thin adapter over `slo.composites.evaluation`."""

from __future__ import annotations

import logging
from datetime import datetime

from celery import shared_task
from django.utils import timezone

from slo.composites.evaluation import composite_evaluate_all

logger = logging.getLogger(__name__)


@shared_task(name="slo.composites.evaluate_all")
def composites_evaluate_all(now_iso: str | None = None) -> int:
    """Evaluate every composite at this minute (each claims its status row per instant)."""
    now = datetime.fromisoformat(now_iso) if now_iso else timezone.now()
    report = composite_evaluate_all(now=now)
    logger.info(
        "evaluated %s composites at %s: %s transitions, %s notifications",
        report.evaluated,
        report.now.isoformat(),
        report.transitions,
        report.notifications,
    )
    return report.evaluated
