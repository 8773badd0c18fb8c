"""Writes for per-request decision records: push ingest and retention.

The format and its checks are routing/fleet/decision_format.py; the reads are decision_selectors.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from controlplane.errors import ValidationFailed
from routing.fleet.decision_format import DecisionRecord as ParsedRecord
from routing.fleet.decision_format import parse_decision_batch
from routing.models.decisions import DecisionRecord

logger = logging.getLogger(__name__)

_TABLE = DecisionRecord._meta.db_table
_COLUMNS = (
    "gateway_id",
    "service",
    "tier",
    "region",
    "request_id",
    "at",
    "minute",
    "rule",
    "admission",
    "chain",
    "route",
    "cache",
    "model_version",
    "revision",
    "outcome",
    "latency_ms",
)


def decision_retention() -> timedelta:
    return timedelta(days=settings.DECISION_RECORD_RETENTION_DAYS)


@dataclass(frozen=True)
class DecisionIngestResult:
    records: int  # records in the batch
    stored: int  # new records (a request id this gateway already sent is ignored)


@dataclass(frozen=True)
class Registration:
    """Where a gateway's records are filed: its registered service, tier and region."""

    gateway_id: int
    service: str
    tier: str
    region: str


def decision_records_ingest(
    *, registration: Registration, payload: Any, now: datetime | None = None
) -> DecisionIngestResult:
    """Validate a pushed decision batch whole, then store it in one statement.

    Records are filed under `registration` (the authenticated gateway's), whatever the batch says.
    Any problem raises ValidationFailed with every path and stores nothing.
    """
    now = now or timezone.now()
    oldest = now - decision_retention()
    records, problems = parse_decision_batch(payload, now_s=now.timestamp(), oldest_s=oldest.timestamp())
    if records is None:
        raise ValidationFailed("invalid decision-record batch", problems=problems)
    stored = decision_records_store(registration=registration, records=records)
    return DecisionIngestResult(records=len(records), stored=stored)


def _row(registration: Registration, record: ParsedRecord) -> tuple[Any, ...]:
    return (
        registration.gateway_id,
        registration.service,
        registration.tier,
        registration.region,
        record.request_id,
        datetime.fromtimestamp(record.at, tz=UTC),
        int(record.at // 60),
        record.rule or "",
        record.admission or "",
        list(record.chain),
        record.route,
        list(record.cache),
        record.model_version or "",
        record.revision,
        record.outcome,
        record.latency_ms,
    )


def decision_records_store(*, registration: Registration, records: Sequence[ParsedRecord]) -> int:
    """Insert validated records; a (gateway, request_id) already stored is left as it was.
    Returns how many were new. On PostgreSQL: COPY into a temporary table, then one
    INSERT ... SELECT ... ON CONFLICT DO NOTHING (COPY itself cannot skip conflicts)."""
    if not records:
        return 0
    rows = [_row(registration, record) for record in records]
    cols = ", ".join(_COLUMNS)
    with transaction.atomic():
        if connection.vendor != "postgresql":
            before = DecisionRecord.objects.count()
            DecisionRecord.objects.bulk_create(
                [DecisionRecord(**dict(zip(_COLUMNS, row, strict=True))) for row in rows],
                ignore_conflicts=True,
                batch_size=1000,
            )
            return DecisionRecord.objects.count() - before
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS decision_incoming ON COMMIT DELETE ROWS "
                f"AS SELECT {cols} FROM {_TABLE} WITH NO DATA"
            )
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY decision_incoming ({cols}) FROM STDIN") as copy:
                for row in rows:
                    # JSON columns (chain, cache) as JSON text: COPY's text format parses it as jsonb
                    copy.write_row((*row[:9], json.dumps(row[9]), row[10], json.dumps(row[11]), *row[12:]))
            cursor.execute(
                f"INSERT INTO {_TABLE} ({cols}) SELECT {cols} FROM decision_incoming "
                "ON CONFLICT (request_id, gateway_id) DO NOTHING"
            )
            stored = cursor.rowcount
            cursor.execute("TRUNCATE decision_incoming")
    return stored


def decision_records_retention_enforce(*, now: datetime | None = None) -> int:
    """Delete records older than DECISION_RECORD_RETENTION_DAYS. Returns rows deleted."""
    now = now or timezone.now()
    deleted, _ = DecisionRecord.objects.filter(at__lt=now - decision_retention()).delete()
    if deleted:
        logger.info("decision records retention: %d records deleted", deleted)
    return deleted
