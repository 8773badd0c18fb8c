"""Celery tasks, called directly, and their beat schedule entries."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.schedules import declared_periodic_tasks, ensure_periodic_tasks
from slo.models.telemetry import SliMinute, TelemetrySource
from slo.tasks import telemetry as tasks
from slo.telemetry.ingest import telemetry_batch_ingest
from tests.slo.telemetry.conftest import NOW, batch, requests

pytestmark = pytest.mark.django_db


def test_the_beat_schedule_pulls_every_minute_and_enforces_retention() -> None:
    entries = {e["task"]: e for e in declared_periodic_tasks()}
    assert entries["slo.tasks.telemetry.pull_sources"]["every_s"] == 60
    assert "slo.tasks.telemetry.enforce_retention" in entries
    assert entries["slo.tasks.telemetry.ensure_partitions"]["every_s"] == 3600
    ensure_periodic_tasks()
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="slo.tasks.telemetry.pull_sources", interval__every=60).exists()


def test_pull_sources_fans_out_one_task_per_enabled_idle_source(monkeypatch: Any) -> None:
    from django.utils import timezone

    TelemetrySource.objects.create(name="a", url="http://a", tier="edge")
    TelemetrySource.objects.create(name="b", url="http://b", tier="edge", enabled=False)
    TelemetrySource.objects.create(name="c", url="http://c", tier="edge", pulling_since=timezone.now())
    sent: list[int] = []
    monkeypatch.setattr(tasks.pull_source, "delay", sent.append)  # the broker is the outside edge
    assert tasks.pull_sources() == 1
    assert sent == [TelemetrySource.objects.get(name="a").pk]


def test_pull_source_reports_a_failed_pull(monkeypatch: Any) -> None:
    source = TelemetrySource.objects.create(name="down", url="http://127.0.0.1:9", tier="edge", timeout_s=1)
    monkeypatch.setattr("slo.telemetry.pull.PULL_MAX_RETRIES", 0)
    from slo.telemetry.pull import served_slos

    assert served_slos(source) == []
    result = tasks.pull_source(source.pk)  # no SLOs served: nothing to ask, still a success
    assert result["claimed"] and result["ok"]


def test_enforce_retention_runs(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(source="gateway:1", payload=batch({0: [requests("local", "ok", 1)]}), now=NOW)
    assert tasks.enforce_retention()["sli_minutes"] == 3  # NOW is long past: everything is old
    assert not SliMinute.objects.exists()


def test_ensure_partitions_runs(settings: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from slo.telemetry.partitions import PARTITIONED_TABLES, partition_name, partitions

    settings.TELEMETRY_PARTITIONS_AHEAD_DAYS = 9  # the migration made 7 days ahead
    created = tasks.ensure_partitions()
    assert set(created) == set(PARTITIONED_TABLES) and min(created.values()) >= 2
    today = datetime.now(UTC).date()
    for table in PARTITIONED_TABLES:
        names = {p.name for p in partitions(table)}
        assert {partition_name(table, today + timedelta(days=d)) for d in range(-1, 10)} <= names
    assert set(tasks.ensure_partitions().values()) == {0}
