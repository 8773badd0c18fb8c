"""slo.telemetry.push_write: a push's writes go in one round trip that PostgreSQL runs as one
transaction, in autocommit as inside a caller's transaction: a failure anywhere in it stores
nothing (not the claim, not the delete of a re-sent minute's series)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import DataError, connection

from slo.models.telemetry import PushedMinute, SeriesMinute, SliFeed, SliHourPending, SliMinute, SliSpan
from slo.telemetry.ingest import push_targets_statement, telemetry_batch_ingest
from slo.telemetry.sql import run_statements_fetch_each
from tests.slo.telemetry.conftest import NOW, batch, iso, requests

GW = "gateway:11"


def everything() -> list[list[tuple[Any, ...]]]:
    return [
        sorted(SeriesMinute.objects.values_list("minute", "source", "name", "labels", "value")),
        sorted(SliMinute.objects.values_list("slo_id", "minute", "source", "good", "valid", "present")),
        sorted(SliFeed.objects.values_list("slo_id", "source", "mode", "first_minute", "last_minute")),
        sorted(SliHourPending.objects.values_list("slo_id", "hour", "marked_at")),
        sorted(SliSpan.objects.values_list("slo_id", "first_minute", "last_minute", "marked_at")),
        sorted(PushedMinute.objects.values_list("source", "minute", "stamp")),
    ]


def _rows(source: str) -> list[tuple[Any, ...]]:
    """What the gateway's authentication reads: the SLOs of shelf-vision and those the source feeds."""
    return run_statements_fetch_each(
        [push_targets_statement(source, ("SELECT id FROM slo_service WHERE name = %s", ["shelf-vision"]))]
    )[0]


@pytest.mark.django_db(transaction=True)
def test_a_failing_write_in_autocommit_stores_nothing_of_its_batch(slos: dict[str, Any]) -> None:
    assert connection.get_autocommit()  # the write is one implicit transaction, not an atomic block
    first = batch({0: [requests("local", "ok", 90), requests("local", "error", 10)]}, sent_at=iso(5))
    telemetry_batch_ingest(source=GW, payload=first, now=NOW)
    before = everything()

    # the same minute again (newer), also fed to an SLO id no bigint holds: the writes' statement
    # fails after the claim and the delete of the minute's series ran in the statement before it
    rows = _rows(GW)
    bad = [(2**63 + slo_id, spec, fed) for slo_id, spec, fed in rows[:1]]
    second = batch({0: [requests("local", "ok", 100)], 1: [requests("local", "ok", 5)]}, sent_at=iso(6))
    with pytest.raises(DataError):
        telemetry_batch_ingest(source=GW, payload=second, now=NOW, target_rows=[*rows, *bad])
    assert everything() == before

    # and the connection is usable again: the same batch with the real SLOs goes in whole
    result = telemetry_batch_ingest(source=GW, payload=second, now=NOW, target_rows=rows)
    assert (result.minutes, result.samples, result.stale_minutes_ignored) == (2, 2, 0)
    assert sorted(SeriesMinute.objects.values_list("labels", "value")) == [
        ("outcome=ok,route=local", 5.0),
        ("outcome=ok,route=local", 100.0),
    ]


@pytest.mark.django_db
def test_target_rows_read_for_the_gateway_give_what_the_ingest_reads_itself(slos: dict[str, Any]) -> None:
    payload = batch({0: [requests("local", "ok", 7)], 3: [requests("local", "error", 1)]})
    mine = telemetry_batch_ingest(source=GW, payload=json.loads(json.dumps(payload)), now=NOW)
    stored = everything()
    SliMinute.objects.all().delete()
    SeriesMinute.objects.all().delete()
    PushedMinute.objects.all().delete()
    theirs = telemetry_batch_ingest(source=GW, payload=payload, now=NOW, target_rows=_rows(GW))
    assert mine.slo_ids == theirs.slo_ids == tuple(sorted(s.pk for s in slos.values()))
    assert everything()[:2] == stored[:2]
