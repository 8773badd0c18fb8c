"""Writes for telemetry: push ingest, Prometheus pulls, sources, hourly rollups and retention.

Both paths end in `_store`, inside the caller's transaction: it upserts the per-minute SLI rows
(re-sending a minute replaces it, never adds), extends the sources' feeds (what "missing" is
measured against) and marks every touched hour as pending. `telemetry_rollup_pending` (a task
enqueued on commit, plus a periodic sweep) recomputes pending hours: it claims them with SKIP
LOCKED, and an ingest re-marking an hour locks that row until it commits, so a rollup never
deletes the mark of minutes it could not see yet. Writers of one source are serialised by an
advisory lock (their delete-then-insert of series must not interleave).

A push batch on PostgreSQL costs six round trips whatever its size: BEGIN; lock + delete of the
re-sent minutes + the SLOs it feeds (one multi-statement); COPY of the series (start, data);
the SLI, feed and pending-hour upserts (one multi-statement); COMMIT. Series rows go straight into
`SeriesMinute` by COPY after deleting the minutes re-sent (no staging table: a re-sent minute is
replaced whole, so there is nothing to merge, and one copy of the rows is cheaper than two).

Telemetry data is not audited row by row (it is data, not configuration, and arrives many times a
second); it is counted in the control plane's metrics and the sources' statistics. Source changes
are audited.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from controlplane.errors import Forbidden, NotFound, ValidationFailed
from controlplane.metrics import INGEST_ERRORS, INGESTED_SAMPLES, SOURCE_UP
from slo.contract import sli_queries
from slo.counters import DEFAULT_LOOKBACK_MINUTES
from slo.models import Service, Slo
from slo.models.telemetry import (
    SeriesMinute,
    SliFeed,
    SliHour,
    SliHourPending,
    SliMinute,
    TelemetrySource,
)
from slo.prom import PrometheusPuller, PrometheusQueryError, PromPullError
from slo.spec import Problem, SloSpec
from slo.telemetry import batch as push_batch
from slo.telemetry.derive import SliRow, derive_sli_rows, sli_target
from slo.telemetry.scope import PushScope, scope_problems
from slo.telemetry.selectors import MINUTE_S, epoch_minute_floor, minute_arrays, minute_datetime
from slo.telemetry.spans import feeds_retire, span_statements, written_spans
from slo.telemetry.spec import parse_source_spec
from slo.telemetry.sql import (
    Statement,
    copy_field,
    copy_insert,
    copy_text,
    delete_older,
    delete_source_minutes_statements,
    is_postgres,
    lock_source_statement,
    run_statements,
    run_statements_fetch_each,
    upsert,
    upsert_statements,
)
from slo.telemetry.stamps import batch_stamp, claim_statement, keep_minutes, stamps_delete_older

logger = logging.getLogger(__name__)

# For the gateway adapter: answer 413 above this many body bytes, before parsing JSON.
MAX_BATCH_BYTES = push_batch.MAX_BATCH_BYTES
SOURCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}:[A-Za-z0-9._:@/-]{1,68}$")
# A claim older than this belongs to a dead worker (the task hard limit is 300 s).
PULL_CLAIM_LEASE = timedelta(minutes=10)
# Prometheus may still revise the last `lookback` minutes of a pull (a quiet series may come back
# or be gone for good): every pull re-reads them, and the upsert replaces what was stored.
REPULL_MINUTES = DEFAULT_LOOKBACK_MINUTES
PULL_MAX_RETRIES = 3
# One run pulls at most this much per SLO (stays inside the task time limit); the next continues.
MAX_PULL_MINUTES = 3 * 1440

_SLI_TABLE = SliMinute._meta.db_table
_FEED_TABLE = SliFeed._meta.db_table
_HOUR_TABLE = SliHour._meta.db_table
_PENDING_TABLE = SliHourPending._meta.db_table
_SERIES_TABLE = SeriesMinute._meta.db_table
_SERIES_COLUMNS = ("minute", "source", "name", "service", "tier", "labels", "value")


@dataclass(frozen=True)
class IngestResult:
    """What one push batch stored."""

    source: str
    minutes: int
    samples: int
    slo_minutes: int
    slo_ids: tuple[int, ...]
    hours_pending: int
    # listed minutes not stored because a newer write of them is stored (a replayed older batch)
    stale_minutes_ignored: int = 0
    stale_minutes: tuple[str, ...] = ()


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


# -- push ---------------------------------------------------------------------------------------


def telemetry_batch_ingest(
    *, source: str, payload: dict[str, Any], now: datetime | None = None, scope: PushScope | None = None
) -> IngestResult:
    """Validate a pushed batch whole, then store it in one transaction.

    `source` is the stable sender, e.g. `gateway:<id>` (the adapter authenticates it). Any problem
    raises ValidationFailed with every problem's path and stores nothing. `scope` is what the
    authenticated sender may report about (its service and tier): a series outside it raises
    Forbidden with its path and stores nothing. Only trusted internal writers (demo, importers,
    tests) pass None. Re-sending a minute replaces what this source said about it (series and SLI
    minutes), so retries never double-count; unless the stored write of that minute is newer (a
    later `sent_at`): then the minute is left as it is and reported in `stale_minutes`.
    """
    now = now or timezone.now()
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        raise ValidationFailed("invalid source", problems=[Problem("source", "must look like kind:id")])
    oldest = epoch_minute_floor(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    batch, problems = push_batch.parse_push_batch(
        payload, known_services=_ServiceNames(), now_s=now.timestamp(), oldest_minute=oldest
    )
    if batch is None:
        INGEST_ERRORS.labels(path="push", reason="invalid").inc()
        raise ValidationFailed("invalid telemetry batch", problems=problems)
    if scope is not None:
        problems = scope_problems(payload, batch, scope)
        if problems:
            INGEST_ERRORS.labels(path="push", reason="scope").inc()
            logger.warning("telemetry push from %s (gateway %s) refused: %d series outside its scope, first %s",
                           source, scope.gateway, len(problems), problems[0].path)
            raise Forbidden(f"gateway {scope.gateway} may push only service {scope.service} on tier {scope.tier}",
                            problems=problems)
    postgres = is_postgres()
    stamp = batch_stamp(batch, now)
    with transaction.atomic():
        # Claim the minutes (a newer stored write keeps its minute) and replace the claimed ones
        # whole: a series the gateway no longer lists for a minute is gone.
        if postgres:
            # the claim, the delete and the SLOs it feeds: one round trip with the lock
            *_, claimed_rows, target_rows = run_statements_fetch_each([
                *lock_source_statement(source),
                claim_statement(source, batch.minutes, stamp, clear_table=_SERIES_TABLE),
                _push_targets_statement(source, batch),
            ])
            claimed = {row[0] for row in claimed_rows}
            targets = _push_targets_from_rows(target_rows, batch)
        else:
            run_statements(lock_source_statement(source))
            claimed = {row[0] for row in run_statements_fetch_each([claim_statement(source, batch.minutes, stamp)])[0]}
            run_statements(delete_source_minutes_statements(_SERIES_TABLE, source, sorted(claimed)))
            targets = _push_targets(source, batch)
        stale = sorted(set(batch.minutes) - claimed)
        stored = keep_minutes(batch, claimed) if stale else batch
        if postgres:
            copy_text(_SERIES_TABLE, _SERIES_COPY_COLUMNS, _series_copy_text(source, stored))
        else:
            copy_insert(_SERIES_TABLE, _SERIES_COLUMNS, [
                (minute, source, ref.name, ref.service, ref.tier, ref.stored_labels, value)
                for minute, ref, value in stored.points
            ])
        sli_rows = derive_sli_rows(stored, targets)
        hours = _store(source, "push", sli_rows, now)
        transaction.on_commit(_schedule_rollup)
    sample_count = len(stored.points)
    INGESTED_SAMPLES.labels(path="push", source=source).inc(sample_count)
    if stale:
        INGEST_ERRORS.labels(path="push", reason="stale_minute").inc(len(stale))
        logger.info("telemetry push from %s: %d minutes ignored, a newer write of them is stored", source, len(stale))
    return IngestResult(
        source=source,
        minutes=len(stored.minutes),
        samples=sample_count,
        slo_minutes=len(sli_rows),
        slo_ids=tuple(sorted({t.slo_id for t in targets})),
        hours_pending=hours,
        stale_minutes_ignored=len(stale),
        stale_minutes=tuple(minute_datetime(m).isoformat().replace("+00:00", "Z") for m in stale),
    )


class _ServiceNames:
    """Known service names, cached per process; a name not in the cache re-reads the table once per
    batch, so a service created a moment ago is never refused (a deleted one is harmless)."""

    _cache: frozenset[str] = frozenset()

    def __init__(self) -> None:
        self._refreshed = False

    def __contains__(self, name: object) -> bool:
        if name in _ServiceNames._cache:
            return True
        if not self._refreshed:
            self._refreshed = True
            _ServiceNames._cache = frozenset(Service.objects.values_list("name", flat=True))
        return name in _ServiceNames._cache


_SERIES_COPY_COLUMNS = ("minute", "value", "source", "name", "service", "tier", "labels")


def _series_copy_text(source: str, batch: push_batch.PushBatch) -> str:
    """The batch's `SeriesMinute` rows in COPY text format. A series' fields are rendered once and
    cached on it (series come back every minute and every batch); a row adds its minute and value."""
    head = f"\t{copy_field(source)}\t"
    lines = []
    append = lines.append
    for minute, ref, value in batch.points:
        tail = ref.copy_tail
        if tail is None:
            tail = ref.copy_tail = "\t".join(
                copy_field(x) for x in (ref.name, ref.service, ref.tier, ref.stored_labels)
            ) + "\n"
        append(f"{minute}\t{value!r}{head}{tail}")
    return "".join(lines)


_SLO_TABLE = Slo._meta.db_table
_SERVICE_TABLE = Service._meta.db_table


def _push_targets_statement(source: str, batch: push_batch.PushBatch) -> Statement:
    """`_push_targets` as one SQL statement (PostgreSQL path; it rides with the lock and delete)."""
    names = sorted({service for service, _ in batch.service_tiers()})
    by_service = (
        f"s.service_id IN (SELECT id FROM {_SERVICE_TABLE} WHERE name IN ({', '.join(['%s'] * len(names))})) OR "
        if names else ""
    )
    fed = f"SELECT slo_id FROM {_FEED_TABLE} WHERE source = %s AND mode <> 'retired'"
    return (
        f"SELECT s.id, s.spec, s.id IN ({fed}) FROM {_SLO_TABLE} s "
        f"WHERE s.archived_at IS NULL AND ({by_service}s.id IN ({fed}))",
        [source, *names, source],
    )


@functools.lru_cache(maxsize=4096)
def _cached_target(slo_id: int, spec_json: str) -> Any:
    """The target of an SLO's stored spec (JSON text): SLO specs change rarely, batches often."""
    return sli_target(slo_id, json.loads(spec_json))


def _push_targets_from_rows(rows: Sequence[tuple[Any, ...]], batch: push_batch.PushBatch) -> list[Any]:
    service_tiers = batch.service_tiers()
    targets = []
    for slo_id, spec, fed in rows:
        target = _cached_target(slo_id, spec) if isinstance(spec, str) else sli_target(slo_id, spec)
        if target is None:
            continue
        if fed or any(target.matches(service, tier) for service, tier in service_tiers):
            targets.append(target)
    return targets


# Enqueue at most one rollup task per process per this many seconds: one run rolls up every
# pending hour, and the periodic sweep catches marks made after the last run.
ROLLUP_DEBOUNCE_S = 1.0
_last_rollup_enqueued = [0.0]


def _schedule_rollup() -> None:
    now = time.monotonic()
    if now - _last_rollup_enqueued[0] < ROLLUP_DEBOUNCE_S:
        return
    _last_rollup_enqueued[0] = now
    from kombu.exceptions import OperationalError as BrokerError

    from slo.tasks.telemetry import rollup_hours

    try:
        rollup_hours.delay()
    except (BrokerError, OSError) as exc:
        # the data is committed and the hour stays pending: the periodic sweep rolls it up
        logger.warning("could not enqueue the telemetry rollup (%s); the periodic sweep will do it", exc)


def _push_targets(source: str, batch: push_batch.PushBatch) -> list[Any]:
    """SLOs this batch feeds: those of the services (and tiers) it carries, plus every SLO this source
    already feeds (a listed minute is complete: no series for it means 0 events, not missing).
    One query: it runs for every batch."""
    service_tiers = batch.service_tiers()
    names = {service for service, _ in service_tiers}
    feeds = SliFeed.objects.filter(source=source).exclude(mode="retired")
    slos = (
        Slo.objects.filter(archived_at__isnull=True)
        .filter(Q(service__name__in=names) | Q(pk__in=feeds.values("slo_id")))
        .annotate(fed=Exists(feeds.filter(slo_id=OuterRef("pk"))))
    )
    targets = []
    for slo_id, spec, fed in slos.values_list("pk", "spec", "fed"):
        target = sli_target(slo_id, spec)
        if target is None:
            continue
        if fed or any(target.matches(service, tier) for service, tier in service_tiers):
            targets.append(target)
    return targets


def telemetry_source_retire(*, actor: Any = None, source: str) -> int:
    """Stop expecting minutes from a source (gateway removed): its past data stays. Returns feeds retired."""
    with transaction.atomic():
        count = feeds_retire(SliFeed.objects.filter(source=source), timezone.now())
        if count:
            audit_record(actor=actor, action="retire", object_type="telemetry.source", object_id=source,
                         object_repr=source, after={"feeds_retired": count})
    return count


# -- shared storage ---------------------------------------------------------------------------


def _store(source: str, mode: str, rows: Sequence[SliRow], now: datetime) -> int:
    """Upsert SLI minutes, extend the feeds, mark touched hours pending (one round trip on
    PostgreSQL). Runs inside the caller's transaction. Returns the hours marked."""
    if not rows:
        return 0
    spans: dict[int, list[int]] = {}
    touched: set[tuple[int, int]] = set()
    for r in rows:
        span = spans.get(r.slo_id)
        if span is None:
            spans[r.slo_id] = [r.minute, r.minute]
        else:
            span[0] = min(span[0], r.minute)
            span[1] = max(span[1], r.minute)
        touched.add((r.slo_id, r.minute // 60))
    statements: list[Statement] = [
        *span_statements(written_spans(rows), now),
        *upsert_statements(
            _SLI_TABLE,
            ("slo_id", "minute", "source", "good", "valid", "present"),
            ("slo_id", "minute", "source"),
            [(r.slo_id, r.minute, source, r.good, r.valid, bool(r.present)) for r in rows],
            array_types=("bigint", "bigint", "text", "bigint", "bigint", "boolean"),
        ),
        *upsert_statements(
            _FEED_TABLE,
            ("slo_id", "source", "mode", "first_minute", "last_minute"),
            ("slo_id", "source"),
            [(slo_id, source, mode, lo, hi) for slo_id, (lo, hi) in spans.items()],
            update={
                "first_minute": "{least}({table}.first_minute, excluded.first_minute)",
                "last_minute": "{greatest}({table}.last_minute, excluded.last_minute)",
            },
            array_types=("bigint", "text", "text", "bigint", "bigint"),
        ),
        # DO UPDATE (not DO NOTHING): it locks an existing mark until we commit, so a rollup
        # running now skips it instead of deleting it without seeing our minutes.
        *upsert_statements(
            _PENDING_TABLE, ("slo_id", "hour", "marked_at"), ("slo_id", "hour"),
            sorted((slo_id, hour, now.timestamp()) for slo_id, hour in touched),
            array_types=("bigint", "bigint", "double precision"),
        ),
    ]
    run_statements(statements)
    return len(touched)


def telemetry_rollup_pending(*, limit: int = 20_000) -> int:
    """Recompute the hourly rollups of pending hours, `limit` per transaction, until none is left
    (or another worker holds the rest). Returns the hours rolled up."""
    done = 0
    while True:
        with transaction.atomic():
            claimed = list(
                SliHourPending.objects.select_for_update(skip_locked=True)
                .order_by("slo_id", "hour")
                .values_list("slo_id", "hour")[:limit]
            )
            if not claimed:
                return done
            touched: dict[int, set[int]] = defaultdict(set)
            for slo_id, hour in claimed:
                touched[slo_id].add(hour)
            _rollup(touched)
            _pending_delete(claimed)
        done += len(claimed)
        if len(claimed) < limit:
            return done


def _pending_delete(claimed: Sequence[tuple[int, int]]) -> None:
    """Delete claimed (slo, hour) marks. One statement joined against two arrays on PostgreSQL: a
    row-value `IN` list of this size overflows its parser's stack (at about 8,000 pairs); SQLite
    (one writer) deletes SLO by SLO."""
    if is_postgres():
        run_statements([(
            f"DELETE FROM {_PENDING_TABLE} p USING unnest(%s::bigint[], %s::bigint[]) AS c(slo_id, hour) "
            "WHERE p.slo_id = c.slo_id AND p.hour = c.hour",
            [[slo_id for slo_id, _ in claimed], [hour for _, hour in claimed]],
        )])
        return
    hours_of: dict[int, list[int]] = defaultdict(list)
    for slo_id, hour in claimed:
        hours_of[slo_id].append(hour)
    for slo_id, hours in hours_of.items():
        for start in range(0, len(hours), 10_000):
            SliHourPending.objects.filter(slo_id=slo_id, hour__in=hours[start : start + 10_000]).delete()


def _rollup(touched: dict[int, set[int]]) -> int:
    """Recompute the hourly rollups of the touched (SLO, hour) pairs from the minutes."""
    if not touched:
        return 0
    slo_ids = sorted(touched)
    all_hours = sorted({h for hours in touched.values() for h in hours})
    out: list[tuple[int, int, int, int, int]] = []
    # Contiguous runs of hours keep the minute arrays small when the hours are far apart.
    for run in _runs(all_hours):
        first, stop = run[0] * 60, (run[-1] + 1) * 60
        good, valid, present = minute_arrays(slo_ids, first, stop)
        rows, n = good.shape
        # Good capped at valid per minute, as the budget engine does with minute buckets.
        by_hour = [
            a.reshape(rows, n // 60, 60).sum(axis=2)
            for a in (np.minimum(good, valid), valid, present.astype(np.int64))
        ]
        for row, slo_id in enumerate(slo_ids):
            for hour in touched[slo_id]:
                if run[0] <= hour <= run[-1]:
                    col = hour - run[0]
                    out.append((slo_id, hour, int(by_hour[0][row, col]), int(by_hour[1][row, col]),
                                int(by_hour[2][row, col])))
    upsert(_HOUR_TABLE, ("slo_id", "hour", "good", "valid", "present_minutes"), ("slo_id", "hour"), out)
    return len(out)


def _runs(hours: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for hour in hours:
        if runs and hour == runs[-1][-1] + 1:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


# -- pull ---------------------------------------------------------------------------------------


def served_slos(source: TelemetrySource) -> list[Slo]:
    """SLOs a source serves: those of its tier; an SLO without a tier is served by the sources of
    every tier its service runs on (their sum covers all tiers). `source.services` narrows it."""
    slos = Slo.objects.filter(archived_at__isnull=True).select_related("service").order_by("pk")
    if source.services:
        slos = slos.filter(service__name__in=source.services)
    return [
        slo for slo in slos
        if slo.tier == source.tier or (not slo.tier and source.tier in (slo.service.tiers or []))
    ]


def _puller(source: TelemetrySource, now: datetime, options: dict[str, Any]) -> PrometheusPuller:
    secret = decrypt_secret(source.secret_encrypted) if source.secret_encrypted else ""
    return PrometheusPuller(
        source.url,
        bearer_token=secret if source.auth_kind == TelemetrySource.AUTH_BEARER and secret else None,
        basic_auth=(source.username, secret) if source.auth_kind == TelemetrySource.AUTH_BASIC else None,
        verify_tls=source.verify_tls,
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
        return _pull_failed(source, mine, now, "credentials", "stored credentials cannot be decrypted (key rotated?)")
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
        _store(key, "pull", rows, now)
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
        source_id=source_id, claimed=True, ok=True, slos=len(done), slo_minutes=len(rows),
        present_minutes=present_count, error="; ".join(query_errors),
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


# -- sources (configuration) -------------------------------------------------------------------


def source_document(source: TelemetrySource) -> dict[str, Any]:
    """The audited and returned configuration of a source: never the secret, only whether it is set."""
    return {
        "name": source.name, "url": source.url, "tier": source.tier, "region": source.region,
        "services": source.services, "auth_kind": source.auth_kind, "username": source.username,
        "has_secret": bool(source.secret_encrypted), "verify_tls": source.verify_tls,
        "timeout_s": source.timeout_s, "scrape_lag_s": source.scrape_lag_s,
        "backfill_minutes": source.backfill_minutes, "enabled": source.enabled,
    }


_SPEC_FIELDS = (
    "name", "url", "tier", "region", "services", "auth_kind", "username", "verify_tls", "timeout_s",
    "scrape_lag_s", "backfill_minutes", "enabled",
)


def _validated(data: dict[str, Any], *, stored_secret: str) -> tuple[dict[str, Any], str]:
    """(fields, encrypted secret) or ValidationFailed."""
    spec, problems = parse_source_spec(data)
    if spec is None:
        raise ValidationFailed("invalid telemetry source", problems=problems)
    fields = {name: getattr(spec, name) for name in _SPEC_FIELDS}
    if spec.auth_kind == "none":
        encrypted = ""
    elif spec.secret is not None:
        encrypted = encrypt_secret(spec.secret) if spec.secret else ""
    else:
        encrypted = stored_secret
    if spec.auth_kind != "none" and not encrypted:
        raise ValidationFailed("invalid telemetry source", problems=[Problem("secret", f"{spec.auth_kind} auth needs a secret")])
    unknown = sorted(set(spec.services) - set(Service.objects.filter(name__in=spec.services).values_list("name", flat=True)))
    if unknown:
        raise ValidationFailed("invalid telemetry source", problems=[Problem("services", f"unknown services {unknown}")])
    return fields, encrypted


def telemetry_source_create(*, actor: Any, data: dict[str, Any]) -> TelemetrySource:
    fields, encrypted = _validated(data, stored_secret="")
    try:
        with transaction.atomic():
            source = TelemetrySource.objects.create(**fields, secret_encrypted=encrypted)
            audit_record(actor=actor, action="create", obj=source, after=source_document(source))
    except IntegrityError:
        raise ValidationFailed("invalid telemetry source", problems=[Problem("name", "a source with this name exists")]) from None
    return source


def telemetry_source_update(*, actor: Any, source_id: int, data: dict[str, Any]) -> TelemetrySource:
    """Change a source (fields not sent keep their value; `secret` not sent keeps the stored one)."""
    try:
        with transaction.atomic():
            source = TelemetrySource.objects.select_for_update().filter(pk=source_id).first()
            if source is None:
                raise NotFound("no such telemetry source")
            before = source_document(source)
            current = {k: v for k, v in before.items() if k != "has_secret"}
            fields, encrypted = _validated({**current, **data}, stored_secret=source.secret_encrypted)
            for name, value in fields.items():
                setattr(source, name, value)
            source.secret_encrypted = encrypted
            source.updated_at = timezone.now()
            source.save()
            if not source.enabled:
                feeds_retire(SliFeed.objects.filter(source=source.source_key), timezone.now())
            after = source_document(source)
            if data.get("secret") is not None:
                after["secret_changed"] = True
            audit_record(actor=actor, action="update", obj=source, before=before, after=after)
    except IntegrityError:
        raise ValidationFailed("invalid telemetry source", problems=[Problem("name", "a source with this name exists")]) from None
    return source


def telemetry_source_delete(*, actor: Any, source_id: int) -> None:
    """Delete a source; its stored minutes stay (history), its feeds stop expecting new ones."""
    with transaction.atomic():
        source = TelemetrySource.objects.select_for_update().filter(pk=source_id).first()
        if source is None:
            raise NotFound("no such telemetry source")
        feeds_retire(SliFeed.objects.filter(source=source.source_key), timezone.now())
        audit_record(actor=actor, action="delete", obj=source, before=source_document(source))
        source.delete()


# -- retention ----------------------------------------------------------------------------------


def telemetry_retention_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Delete minutes older than TELEMETRY_MINUTE_RETENTION_DAYS and hours older than
    TELEMETRY_HOUR_RETENTION_DAYS; drop feeds that ended before the minute retention."""
    now = now or timezone.now()
    minute_cutoff = epoch_minute_floor(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    hour_cutoff = int(now.timestamp() // 3600) - settings.TELEMETRY_HOUR_RETENTION_DAYS * 24
    deleted = {
        "sli_minutes": delete_older(_SLI_TABLE, "minute", minute_cutoff),
        "series_minutes": delete_older(_SERIES_TABLE, "minute", minute_cutoff),
        # a stamp outlives no minute: minutes older than the cutoff are refused at ingest
        "pushed_minutes": stamps_delete_older(minute_cutoff),
        "sli_hours": delete_older(_HOUR_TABLE, "hour", hour_cutoff),
        "feeds": SliFeed.objects.filter(last_minute__lt=minute_cutoff).exclude(mode="pull").delete()[0],
        "context_samples": _context_samples_retention(now),
    }
    logger.info("telemetry retention: %s", deleted)
    return deleted


def _context_samples_retention(now: datetime) -> int:
    from slo.telemetry.context_services import context_samples_retention_enforce  # it imports this module

    return context_samples_retention_enforce(now=now)


__all__ = [
    "MAX_BATCH_BYTES", "MINUTE_S", "IngestResult", "PullResult", "served_slos", "source_document",
    "telemetry_batch_ingest", "telemetry_retention_enforce", "telemetry_rollup_pending", "telemetry_source_create",
    "telemetry_source_delete", "telemetry_source_pull", "telemetry_source_retire",
    "telemetry_source_update", "telemetry_sources_due",
]


def telemetry_sli_rows_store(*, source: str, rows: Sequence[SliRow], mode: str = "push",
                             now: datetime | None = None) -> int:
    """Store already-derived SLI minutes for `source` (demo history, importers), then roll up.

    Same idempotent upsert as ingest: re-storing a minute replaces it. Returns the rows stored."""
    if mode not in ("push", "retired"):
        raise ValueError("mode must be push or retired")
    now = now or timezone.now()
    for start in range(0, len(rows), 50_000):
        with transaction.atomic():
            _store(source, mode, rows[start:start + 50_000], now)
    telemetry_rollup_pending()
    return len(rows)
