"""Report tasks: thin adapters that take ids and call `slo.reports.services`.

Idempotent under acks_late: a schedule run claims its period on the schedule row, a send claims
its delivery row; running either twice does the work once.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from slo.reports import services

logger = logging.getLogger(__name__)


@shared_task(name="slo.reports.run_schedule")
def report_schedule_run(schedule_id: int) -> int | None:
    """Beat calls this per schedule (its crontab): generate and email the last complete period."""
    report = services.report_schedule_run(schedule_id=schedule_id, now=timezone.now())
    if report is not None:
        logger.info(
            "report schedule %s generated report %s (%s)", schedule_id, report.pk, report.period_label
        )
    return None if report is None else report.pk


@shared_task(name="slo.reports.send_delivery")
def report_delivery_send(delivery_id: int) -> str:
    return services.report_delivery_send(delivery_id=delivery_id, now=timezone.now())


@shared_task(name="slo.reports.send_due")
def report_deliveries_send_due() -> dict[str, int]:
    """Retries, lost enqueues and deliveries abandoned by a dead worker."""
    return services.report_deliveries_send_due(now=timezone.now())
