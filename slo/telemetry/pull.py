"""Prometheus pulls: each enabled source's served SLOs, from its feed's end to now - scrape lag.

A pull claims its source with a conditional update (a claim older than PULL_CLAIM_LEASE belongs
to a dead worker), re-reads the last REPULL_MINUTES (Prometheus may still revise them) and writes
the minutes and the advanced watermark in one transaction through
`slo.telemetry.storage.sli_rows_write`. A failed pull leaves the minutes missing, records the
error and counts the consecutive failures (shown with the source).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from controlplane.crypto import SecretUnreadable, decrypt_secret
from controlplane.metrics import INGEST_ERRORS, INGESTED_SAMPLES, SOURCE_UP
from slo.contract import sli_queries
from slo.counters import DEFAULT_LOOKBACK_MINUTES
from slo.models import Slo
from slo.models.telemetry import SliFeed, TelemetrySource
from slo.prom import PrometheusPuller, PrometheusQueryError, PromPullError
from slo.spec import SloSpec
from slo.telemetry.derive import SliRow
from slo.telemetry.selectors import epoch_minute_floor, minute_datetime
from slo.telemetry.sources import source_headers
from slo.telemetry.spans import feeds_retire
from slo.telemetry.sql import lock_source_statement, run_statements
from slo.telemetry.storage import sli_rows_write, telemetry_rollup_pending

logger = logging.getLogger(__name__)

# A claim older than this belongs to a dead worker (the task hard limit is 300 s).
PULL_CLAIM_LEASE = timedelta(minutes=10)
# Prometheus may still revise the last `lookback` minutes of a pull (a quiet series may come back
# or be gone for good): every pull re-reads them, and the upsert replaces what was stored.
REPULL_MINUTES = DEFAULT_LOOKBACK_MINUTES
PULL_MAX_RETRIES = 3
# One run pulls at most this much per SLO (stays inside the task time limit); the next continues.
MAX_PULL_MINUTES = 3 * 1440


@dataclass(frozen=True)
class PullResult:
    """What one pull of a Prometheus source did. `claimed` False: another worker had it."""

    source_id: int
    claimed: bool
    ok: bool = False
    slos: int = 0
    slo_minutes: int = 0
    present_minutes: int = 0
    error: str = ""


def served_slos(source: TelemetrySource) -> list[Slo]:
    """SLOs a source serves: those of its tier; an SLO without a tier is served by the sources of
    every tier its service runs on (their sum covers all tiers). `source.services` narrows it."""
    slos = Slo.objects.filter(archived_at__isnull=True).select_related("service").order_by("pk")
    if source.services:
        slos = slos.filter(service__name__in=source.services)
    return [
        slo
        for slo in slos
        if slo.tier == source.tier or (not slo.tier and source.tier in (slo.service.tiers or []))
    ]


def _puller(source: TelemetrySource, now: datetime, options: dict[str, Any]) -> PrometheusPuller:
    secret = decrypt_secret(source.secret_encrypted) if source.secret_encrypted else ""
    return PrometheusPuller(
        source.url,
        bearer_token=secret if source.auth_kind == TelemetrySource.AUTH_BEARER and secret else None,
        basic_auth=(source.username, secret) if source.auth_kind == TelemetrySource.AUTH_BASIC else None,
        verify_tls=source.verify_tls,
        headers=source_headers(source),
        clock=lambda: now,
        # a down Prometheus should fail the pull within the task time limit, not after minutes
        **{"timeout_s": source.timeout_s, "max_retries": PULL_MAX_RETRIES, **options},
    )


def telemetry_source_pull(
    *, source_id: int, now: datetime | None = None, puller_options: dict[str, Any] | None = None
) -> PullResult:
    """Pull every served SLO's minutes from its feed's end (or the backfill) to now - scrape lag.

    Claims the source first (conditional update); the minutes and the advanced watermark are
    written in one transaction, so a pull that dies halfway resumes from the old watermark and its
    upserts replace, never add. A failed pull leaves the minutes missing and records the error.
    """
    now = now or timezone.now()
    claimed = (
        TelemetrySource.objects.filter(pk=source_id, enabled=True)
        .filter(Q(pulling_since__isnull=True) | Q(pulling_since__lt=now - PULL_CLAIM_LEASE))
        .update(pulling_since=now, last_attempt_at=now)
    )
    if not claimed:
        return PullResult(source_id=source_id, claimed=False)  # another worker has it, or disabled
    source = TelemetrySource.objects.get(pk=source_id)
    mine = TelemetrySource.objects.filter(pk=source_id, pulling_since=now)
    key = source.source_key
    try:
        puller = _puller(source, now, puller_options or {})
    except SecretUnreadable:
        return _pull_failed(
            source, mine, now, "credentials", "stored credentials cannot be decrypted (key rotated?)"
        )
    end = epoch_minute_floor(now - timedelta(seconds=source.scrape_lag_s))
    oldest = epoch_minute_floor(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    feeds = dict(SliFeed.objects.filter(source=key).values_list("slo_id", "last_minute"))
    served = served_slos(source)
    rows: list[SliRow] = []
    query_errors: list[str] = []
    done: dict[int, int] = {}  # slo id -> first minute not pulled yet
    for slo in served:
        last = feeds.get(slo.pk)
        start = end - source.backfill_minutes if last is None else last + 1 - REPULL_MINUTES
        start = max(start, oldest)
        stop = min(end, start + MAX_PULL_MINUTES)
        if stop <= start:
            done[slo.pk] = end if last is None else last + 1
            continue
        try:
            queries = sli_queries(SloSpec.model_validate(slo.spec))
            good, valid = puller.pull_sli(queries, minute_datetime(start), minute_datetime(stop))
        except PrometheusQueryError as exc:
            # one SLO's query is wrong (e.g. a custom selector): the others still count
            query_errors.append(f"SLO {slo.pk}: {exc.reason}")
            INGEST_ERRORS.labels(path="pull", reason="query").inc()
            continue
        except PromPullError as exc:
            return _pull_failed(source, mine, now, "unavailable", exc.reason)
        present = good.present & valid.present
        rows.extend(
            SliRow(slo.pk, start + i, int(good.values[i]), int(valid.values[i]), bool(present[i]))
            for i in range(stop - start)
        )
        done[slo.pk] = stop
    present_count = sum(1 for r in rows if r.present)
    served_ids = [slo.pk for slo in served]
    with transaction.atomic():
        run_statements(lock_source_statement(key))
        sli_rows_write(key, "pull", rows, now)
        # SLOs this source no longer serves (tier or service list changed): stop expecting them
        feeds_retire(SliFeed.objects.filter(source=key).exclude(slo_id__in=served_ids), now)
        # everything before the watermark is pulled for every served SLO (a failed one: its feed's end)
        watermark = min((done.get(i, feeds[i] + 1 if i in feeds else end) for i in served_ids), default=end)
        updates: dict[str, Any] = {
            "pulling_since": None,
            "watermark": minute_datetime(watermark),
            "last_success_at": now,
            "consecutive_failures": 0,
            "samples_ingested": F("samples_ingested") + present_count,
        }
        if query_errors:
            updates.update(last_error="; ".join(query_errors)[:2000], last_error_at=now)
        mine.update(**updates)
    SOURCE_UP.labels(source=source.name).set(1)
    INGESTED_SAMPLES.labels(path="pull", source=key).inc(present_count)
    telemetry_rollup_pending()  # already in a worker: roll up now rather than enqueue
    return PullResult(
        source_id=source_id,
        claimed=True,
        ok=True,
        slos=len(done),
        slo_minutes=len(rows),
        present_minutes=present_count,
        error="; ".join(query_errors),
    )


def _pull_failed(source: TelemetrySource, mine: Any, now: datetime, reason: str, message: str) -> PullResult:
    logger.warning("telemetry pull of source %s (%s) failed: %s", source.name, source.url, message)
    mine.update(
        pulling_since=None,
        last_error=message[:2000],
        last_error_at=now,
        consecutive_failures=F("consecutive_failures") + 1,
    )
    SOURCE_UP.labels(source=source.name).set(0)
    INGEST_ERRORS.labels(path="pull", reason=reason).inc()
    return PullResult(source_id=source.pk, claimed=True, ok=False, error=message)


def telemetry_sources_due() -> list[int]:
    """Enabled sources nobody is pulling (or whose claim expired): one pull task each."""
    stale = timezone.now() - PULL_CLAIM_LEASE
    return list(
        TelemetrySource.objects.filter(enabled=True)
        .filter(Q(pulling_since__isnull=True) | Q(pulling_since__lt=stale))
        .values_list("pk", flat=True)
    )
