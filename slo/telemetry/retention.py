"""Retention of telemetry: minutes, series, push stamps, hours, ended feeds and context samples."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from slo.models.telemetry import SeriesMinute, SliFeed, SliHour, SliMinute
from slo.telemetry.context_services import context_samples_retention_enforce
from slo.telemetry.selectors import epoch_minute_floor
from slo.telemetry.sql import delete_older
from slo.telemetry.stamps import stamps_delete_older

logger = logging.getLogger(__name__)

_SLI_TABLE = SliMinute._meta.db_table
_HOUR_TABLE = SliHour._meta.db_table
_SERIES_TABLE = SeriesMinute._meta.db_table


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
        "context_samples": context_samples_retention_enforce(now=now),
    }
    logger.info("telemetry retention: %s", deleted)
    return deleted
