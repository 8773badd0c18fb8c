"""Writes for request-context samples: push ingest, the demo's synthetic samples, retention.

The format and its checks are slo/telemetry/contexts.py; the reads are context_selectors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.errors import ValidationFailed
from slo.models.contexts import ContextSample
from slo.spec import Problem
from slo.telemetry.contexts import ContextMinute, parse_context_batch
from slo.telemetry.ingest import SOURCE_RE
from slo.telemetry.selectors import epoch_minute_floor
from slo.telemetry.sql import lock_source_statement, run_statements

logger = logging.getLogger(__name__)

# Simulation reads the last hour; a day leaves room to look back at what a gate saw. Samples are
# bulky (JSON), so they are kept much shorter than SLI minutes.
CONTEXT_RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class ContextIngestResult:
    source: str
    minutes: int  # minutes in the batch
    stored: int  # minutes stored (a smaller sample than the one stored is ignored)
    contexts: int  # contexts stored
    dropped_fields: tuple[str, ...]  # context fields no routing policy reads: not stored


def context_samples_ingest(
    *, source: str, service: str, tier: str = "", region: str = "", payload: Any, now: datetime | None = None
) -> ContextIngestResult:
    """Validate a pushed context batch whole, then store it in one transaction.

    `source` is the authenticated sender (`gateway:<id>`); `service`, `tier` and `region` are its
    registration. Any problem raises ValidationFailed with every path and stores nothing. A minute
    already stored is replaced only by a sample that stands for at least as many requests.
    """
    now = now or timezone.now()
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        raise ValidationFailed("invalid source", problems=[Problem("source", "must look like kind:id")])
    oldest = epoch_minute_floor(now - CONTEXT_RETENTION)
    batch, problems = parse_context_batch(payload, now_s=now.timestamp(), oldest_minute=oldest)
    if batch is None:
        raise ValidationFailed("invalid request-context batch", problems=problems)
    stored = context_minutes_store(
        source=source, service=service, tier=tier, region=region, minutes=batch.minutes, oldest_minute=oldest
    )
    return ContextIngestResult(
        source=source,
        minutes=len(batch.minutes),
        stored=len(stored),
        contexts=sum(len(m.contexts) for m in stored),
        dropped_fields=tuple(batch.dropped_fields),
    )


def context_minutes_store(
    *,
    source: str,
    service: str,
    tier: str,
    region: str,
    minutes: Sequence[ContextMinute],
    oldest_minute: int | None = None,
) -> list[ContextMinute]:
    """Store already-validated minutes (push ingest, the demo seed); returns those that replaced a
    smaller sample or were new. With `oldest_minute`, this source's older rows are deleted too."""
    by_minute = {m.minute: m for m in minutes}
    with transaction.atomic():
        # One writer per source at a time, so the read below still holds when the write lands.
        run_statements(lock_source_statement(f"contexts:{source}"))
        stored = dict(
            ContextSample.objects.filter(
                service=service, source=source, minute__in=list(by_minute)
            ).values_list("minute", "requests")
        )
        winners = [m for minute, m in sorted(by_minute.items()) if stored.get(minute, -1) <= m.requests]
        ContextSample.objects.bulk_create(
            [
                ContextSample(
                    service=service,
                    minute=m.minute,
                    source=source,
                    tier=tier,
                    region=region,
                    requests=m.requests,
                    contexts=m.contexts,
                )
                for m in winners
            ],
            update_conflicts=True,
            unique_fields=["service", "minute", "source"],
            update_fields=["tier", "region", "requests", "contexts"],
        )
        if oldest_minute is not None:
            ContextSample.objects.filter(service=service, source=source, minute__lt=oldest_minute).delete()
    return winners


def context_samples_retention_enforce(*, now: datetime | None = None) -> int:
    """Delete samples older than CONTEXT_RETENTION (every source, pushing or gone). Returns rows deleted."""
    now = now or timezone.now()
    deleted, _ = ContextSample.objects.filter(minute__lt=epoch_minute_floor(now - CONTEXT_RETENTION)).delete()
    if deleted:
        logger.info("context samples retention: %d minutes deleted", deleted)
    return deleted
