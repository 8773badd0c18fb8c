"""Push ingest: a gateway's per-minute batch, validated whole, then stored in one transaction.

Validation is pure (`slo.telemetry.batch`); what an authenticated gateway may report about is
`slo.telemetry.scope`; which write of a re-sent minute wins is `slo.telemetry.stamps`.

A push batch on PostgreSQL costs two round trips whatever its size: the SLOs it feeds (a read),
then every write in one multi-statement query, one implicit transaction (`slo.telemetry.push_write`:
lock, claim and delete of the re-sent minutes, the series, the SLI minutes, feeds, pending hours
and sync spans). A round trip costs the web process and PostgreSQL more than a statement does at
this size. SQLite (the embedded mode) stores through `slo.telemetry.storage.sli_rows_write`, as a
pull does.

Telemetry data is not audited row by row; retiring a source is.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import Forbidden, ValidationFailed
from controlplane.metrics import INGEST_ERRORS, INGESTED_SAMPLES
from slo.models import Service, Slo
from slo.models.telemetry import SeriesMinute, SliFeed
from slo.spec import Problem
from slo.telemetry.batch import parse_push_batch
from slo.telemetry.batch_format import PushBatch
from slo.telemetry.derive import derive_sli_rows, sli_target
from slo.telemetry.push_write import push_write
from slo.telemetry.scope import PushScope, scope_problems
from slo.telemetry.selectors import epoch_minute_floor, minute_datetime
from slo.telemetry.spans import feeds_retire
from slo.telemetry.sql import (
    Statement,
    copy_insert,
    delete_source_minutes_statements,
    is_postgres,
    lock_source_statement,
    run_statements,
    run_statements_fetch_each,
)
from slo.telemetry.stamps import batch_stamp, claim_statement, keep_minutes
from slo.telemetry.storage import schedule_rollup, sli_rows_write

logger = logging.getLogger(__name__)

SOURCE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,30}:[A-Za-z0-9._:@/-]{1,68}$")
_SERIES_TABLE = SeriesMinute._meta.db_table
_SERIES_COLUMNS = ("minute", "source", "name", "service", "tier", "labels", "value")
_FEED_TABLE = SliFeed._meta.db_table


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


def telemetry_batch_ingest(
    *,
    source: str,
    payload: dict[str, Any],
    now: datetime | None = None,
    scope: PushScope | None = None,
    target_rows: Sequence[tuple[Any, ...]] | None = None,
) -> IngestResult:
    """Validate a pushed batch whole, then store it in one transaction.

    `source` is the stable sender, e.g. `gateway:<id>` (the adapter authenticates it). Any problem
    raises ValidationFailed with every problem's path and stores nothing. `scope` is what the
    authenticated sender may report about (its service and tier): a series outside it raises
    Forbidden with its path and stores nothing. Only trusted internal writers (demo, importers,
    tests) pass None. Re-sending a minute replaces what this source said about it (series and SLI
    minutes), so retries never double-count; unless the stored write of that minute is newer (a
    later `sent_at`): then the minute is left as it is and reported in `stale_minutes`.

    `target_rows` (PostgreSQL): the rows of `push_targets_statement` for this source and for
    services that include every service the batch may carry (`scope` enforces that), read in a
    round trip the caller makes anyway (the gateway's authentication); None reads them here.
    """
    now = now or timezone.now()
    if not isinstance(source, str) or not SOURCE_RE.match(source):
        raise ValidationFailed("invalid source", problems=[Problem("source", "must look like kind:id")])
    oldest = epoch_minute_floor(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    batch, problems = parse_push_batch(
        payload, known_services=_ServiceNames(), now_s=now.timestamp(), oldest_minute=oldest
    )
    if batch is None:
        INGEST_ERRORS.labels(path="push", reason="invalid").inc()
        raise ValidationFailed("invalid telemetry batch", problems=problems)
    if scope is not None:
        problems = scope_problems(payload, batch, scope)
        if problems:
            INGEST_ERRORS.labels(path="push", reason="scope").inc()
            logger.warning(
                "telemetry push from %s (gateway %s) refused: %d series outside its scope, first %s",
                source,
                scope.gateway,
                len(problems),
                problems[0].path,
            )
            raise Forbidden(
                f"gateway {scope.gateway} may push only service {scope.service} on tier {scope.tier}",
                problems=problems,
            )
    stamp = batch_stamp(batch, now)
    if is_postgres():
        # targets first (a read), then every write in one round trip (`slo.telemetry.push_write`)
        if target_rows is None:
            target_rows = run_statements_fetch_each([_push_targets_statement(source, batch)])[0]
        targets = _push_targets_from_rows(target_rows, batch)
        all_rows = derive_sli_rows(batch, targets)  # per minute: the claimed minutes' rows are a subset
        claimed = push_write(source, batch, stamp, all_rows, now)
        stale = sorted(set(batch.minutes) - claimed)
        stored = keep_minutes(batch, claimed) if stale else batch
        sli_rows = [r for r in all_rows if r.minute in claimed] if stale else all_rows
        hours = len({(r.slo_id, r.minute // 60) for r in sli_rows})
        transaction.on_commit(schedule_rollup)
    else:
        with transaction.atomic():
            # Claim the minutes (a newer stored write keeps its minute) and replace the claimed ones
            # whole: a series the gateway no longer lists for a minute is gone.
            run_statements(lock_source_statement(source))
            claimed = {
                row[0]
                for row in run_statements_fetch_each([claim_statement(source, batch.minutes, stamp)])[0]
            }
            run_statements(delete_source_minutes_statements(_SERIES_TABLE, source, sorted(claimed)))
            targets = _push_targets(source, batch)
            stale = sorted(set(batch.minutes) - claimed)
            stored = keep_minutes(batch, claimed) if stale else batch
            copy_insert(
                _SERIES_TABLE,
                _SERIES_COLUMNS,
                [
                    (minute, source, ref.name, ref.service, ref.tier, ref.stored_labels, value)
                    for minute, ref, value in stored.points
                ],
            )
            sli_rows = derive_sli_rows(stored, targets)
            hours = sli_rows_write(source, "push", sli_rows, now)
            transaction.on_commit(schedule_rollup)
    sample_count = len(stored.points)
    INGESTED_SAMPLES.labels(path="push", source=source).inc(sample_count)
    if stale:
        INGEST_ERRORS.labels(path="push", reason="stale_minute").inc(len(stale))
        logger.info(
            "telemetry push from %s: %d minutes ignored, a newer write of them is stored", source, len(stale)
        )
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


_SLO_TABLE = Slo._meta.db_table
_SERVICE_TABLE = Service._meta.db_table


def _push_targets_statement(source: str, batch: PushBatch) -> Statement:
    """`_push_targets` as one SQL statement (PostgreSQL path)."""
    names = sorted({service for service, _ in batch.service_tiers()})
    return push_targets_statement(
        source, (f"SELECT id FROM {_SERVICE_TABLE} WHERE name IN ({', '.join(['%s'] * len(names))})", names)
    )


def push_targets_statement(source: str, service_ids: Statement | None) -> Statement:
    """The SLOs a push of `source` may feed, as rows for `telemetry_batch_ingest(target_rows=...)`:
    those of the services `service_ids` selects (a subquery returning service ids; None or no
    parameters selects none) and every SLO the source feeds. Rows of SLOs the batch turns out not
    to feed are dropped after validation, so a superset of the batch's services is fine."""
    subquery, params = service_ids or ("", [])
    by_service = f"s.service_id IN ({subquery}) OR " if subquery and params else ""
    fed = f"SELECT slo_id FROM {_FEED_TABLE} WHERE source = %s AND mode <> 'retired'"
    return (
        f"SELECT s.id, s.spec, s.id IN ({fed}) FROM {_SLO_TABLE} s "
        f"WHERE s.archived_at IS NULL AND ({by_service}s.id IN ({fed}))",
        [source, *(params if by_service else []), source],
    )


@functools.lru_cache(maxsize=4096)
def _cached_target(slo_id: int, spec_json: str) -> Any:
    """The target of an SLO's stored spec (JSON text): SLO specs change rarely, batches often."""
    return sli_target(slo_id, json.loads(spec_json))


def _push_targets_from_rows(rows: Sequence[tuple[Any, ...]], batch: PushBatch) -> list[Any]:
    service_tiers = batch.service_tiers()
    targets = []
    for slo_id, spec, fed in rows:
        target = _cached_target(slo_id, spec) if isinstance(spec, str) else sli_target(slo_id, spec)
        if target is None:
            continue
        if fed or any(target.matches(service, tier) for service, tier in service_tiers):
            targets.append(target)
    return targets


def _push_targets(source: str, batch: PushBatch) -> list[Any]:
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
            audit_record(
                actor=actor,
                action="retire",
                object_type="telemetry.source",
                object_id=source,
                object_repr=source,
                after={"feeds_retired": count},
            )
    return count
