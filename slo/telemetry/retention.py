"""Retention of telemetry: minutes, series, push stamps, hours, ended feeds and context samples.

The minute tables are partitioned by day on PostgreSQL (`slo.telemetry.partitions`): retention
drops the day partitions wholly past the cutoff (and deletes the default partition's expired rows)
instead of deleting rows; on SQLite, or a table not partitioned, it deletes rows."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from slo.models.telemetry import PushedMinute, SeriesMinute, SliFeed, SliHour, SliMinute
from slo.telemetry.context_services import context_samples_retention_enforce
from slo.telemetry.partitions import is_partitioned, partitions_drop_expired
from slo.telemetry.selectors import epoch_minute_floor
from slo.telemetry.sql import delete_older

logger = logging.getLogger(__name__)

_SLI_TABLE = SliMinute._meta.db_table
_HOUR_TABLE = SliHour._meta.db_table
_SERIES_TABLE = SeriesMinute._meta.db_table
_STAMP_TABLE = PushedMinute._meta.db_table


def telemetry_retention_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Remove minutes older than TELEMETRY_MINUTE_RETENTION_DAYS (whole day partitions on
    PostgreSQL: a day goes once all its minutes are past the cutoff) and hours older than
    TELEMETRY_HOUR_RETENTION_DAYS; drop feeds that ended before the minute retention.

    Returns the rows removed per kind (for dropped partitions, the planner's row estimate) and
    `minute_partitions_dropped`."""
    now = now or timezone.now()
    minute_cutoff = epoch_minute_floor(now) - settings.TELEMETRY_MINUTE_RETENTION_DAYS * 1440
    hour_cutoff = int(now.timestamp() // 3600) - settings.TELEMETRY_HOUR_RETENTION_DAYS * 24
    dropped = [0]

    def expire(table: str) -> int:
        if not is_partitioned(table):
            return delete_older(table, "minute", minute_cutoff)
        partitions, rows = partitions_drop_expired(table, minute_cutoff)
        dropped[0] += partitions
        return rows

    deleted = {
        "sli_minutes": expire(_SLI_TABLE),
        "series_minutes": expire(_SERIES_TABLE),
        # a stamp outlives no minute: minutes older than the cutoff are refused at ingest
        "pushed_minutes": expire(_STAMP_TABLE),
        "sli_hours": delete_older(_HOUR_TABLE, "hour", hour_cutoff),
        "feeds": SliFeed.objects.filter(last_minute__lt=minute_cutoff).exclude(mode="pull").delete()[0],
        "context_samples": context_samples_retention_enforce(now=now),
        "minute_partitions_dropped": dropped[0],
    }
    logger.info("telemetry retention: %s", deleted)
    return deleted
