"""The newest write of a pushed minute wins: replaying an older batch never undoes a later
correction (on PostgreSQL, including two writers racing for one minute)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from slo.models.telemetry import PushedMinute, SeriesMinute, SliMinute
from slo.telemetry.ingest import telemetry_batch_ingest
from slo.telemetry.retention import telemetry_retention_enforce
from tests.slo.telemetry.conftest import NOW, batch, iso, requests

GW = "gateway:7"


def sent(seconds: float) -> str:
    """`sent_at` this many seconds after NOW's minute started."""
    return (NOW.replace(second=0) + timedelta(seconds=seconds)).isoformat()


def minute_state() -> tuple[list[Any], list[Any]]:
    return (
        sorted(SliMinute.objects.values_list("slo_id", "minute", "source", "good", "valid", "present")),
        sorted(SeriesMinute.objects.values_list("minute", "source", "name", "labels", "value")),
    )


def availability(slos: dict[str, Any]) -> list[tuple[int, int, int]]:
    return sorted(
        SliMinute.objects.filter(slo_id=slos["edge-availability"].pk).values_list("minute", "good", "valid")
    )


@pytest.mark.django_db
def test_replaying_an_older_batch_after_a_correction_keeps_the_correction(slos: dict[str, Any]) -> None:
    original = batch(
        {0: [requests("local", "ok", 90), requests("local", "error", 10)], 1: [requests("local", "ok", 100)]},
        sent_at=sent(1),
    )
    corrected = batch({0: [requests("local", "ok", 99)]}, sent_at=sent(2))  # the error series is gone
    telemetry_batch_ingest(source=GW, payload=original, now=NOW)
    telemetry_batch_ingest(source=GW, payload=corrected, now=NOW)
    after_correction = minute_state()
    m0 = SliMinute.objects.filter(slo_id=slos["edge-availability"].pk).order_by("minute")[0].minute

    replay = telemetry_batch_ingest(source=GW, payload=original, now=NOW + timedelta(minutes=5))
    assert minute_state() == after_correction
    assert availability(slos) == [(m0, 99, 99), (m0 + 1, 100, 100)]
    assert sorted(SeriesMinute.objects.values_list("minute", "labels", "value")) == [
        (m0, "outcome=ok,route=local", 99.0),
        (m0 + 1, "outcome=ok,route=local", 100.0),
    ]
    # minute 1 was not corrected: the replay re-stores it (same stamp as before) and reports minute 0
    assert (replay.minutes, replay.stale_minutes_ignored, replay.stale_minutes) == (1, 1, (iso(0),))
    assert replay.samples == 1
    assert dict(PushedMinute.objects.values_list("minute", "stamp")) == {
        m0: (NOW.replace(second=2)).timestamp() * 1_000_000,
        m0 + 1: NOW.replace(second=1).timestamp() * 1_000_000,
    }


@pytest.mark.django_db
def test_a_newer_write_replaces_and_an_equal_stamp_is_an_idempotent_resend(slos: dict[str, Any]) -> None:
    m0 = None
    for count, stamp in ((10, 1), (20, 3), (20, 3), (30, 2.999999)):
        result = telemetry_batch_ingest(
            source=GW, payload=batch({0: [requests("local", "ok", count)]}, sent_at=sent(stamp)), now=NOW
        )
        m0 = m0 or availability(slos)[0][0]
        assert availability(slos) == [(m0, min(count, 20), min(count, 20))]
        assert result.stale_minutes_ignored == (1 if count == 30 else 0)


@pytest.mark.django_db
def test_a_batch_without_sent_at_is_stamped_when_received(slos: dict[str, Any]) -> None:
    received = NOW + timedelta(minutes=1)
    telemetry_batch_ingest(source=GW, payload=batch({0: [requests("local", "ok", 10)]}), now=received)
    m0 = availability(slos)[0][0]
    # sent before the unstamped batch was received: older, ignored
    before = telemetry_batch_ingest(
        source=GW,
        payload=batch(
            {0: [requests("local", "ok", 20)]}, sent_at=(received - timedelta(seconds=1)).isoformat()
        ),
        now=received,
    )
    assert before.stale_minutes_ignored == 1 and availability(slos) == [(m0, 10, 10)]
    telemetry_batch_ingest(
        source=GW,
        payload=batch(
            {0: [requests("local", "ok", 30)]}, sent_at=(received + timedelta(seconds=1)).isoformat()
        ),
        now=received,
    )
    assert availability(slos) == [(m0, 30, 30)]
    # an unstamped re-send received later is the newest write again
    telemetry_batch_ingest(
        source=GW, payload=batch({0: [requests("local", "ok", 40)]}), now=received + timedelta(seconds=2)
    )
    assert availability(slos) == [(m0, 40, 40)]


@pytest.mark.django_db
def test_stamps_belong_to_one_source(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(
        source="gateway:1", payload=batch({0: [requests("local", "ok", 10)]}, sent_at=sent(9)), now=NOW
    )
    other = telemetry_batch_ingest(
        source="gateway:2", payload=batch({0: [requests("local", "ok", 5)]}, sent_at=sent(1)), now=NOW
    )
    assert other.stale_minutes_ignored == 0
    assert [(good, valid) for _, good, valid in availability(slos)] == [(5, 5), (10, 10)]


@pytest.mark.django_db
def test_retention_deletes_the_stamps_of_old_minutes(slos: dict[str, Any], settings: Any) -> None:
    telemetry_batch_ingest(
        source=GW, payload=batch({0: [requests("local", "ok", 10)]}, sent_at=sent(1)), now=NOW
    )
    assert telemetry_retention_enforce(now=NOW + timedelta(days=1))["pushed_minutes"] == 0
    later = NOW + timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS, hours=1)
    assert telemetry_retention_enforce(now=later)["pushed_minutes"] == 1
    assert not PushedMinute.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("first", ["newer", "older"])
def test_two_writers_of_one_minute_keep_the_newer_whatever_the_commit_order(
    slos: dict[str, Any], first: str
) -> None:
    """The first writer holds its transaction open; the second blocks on the minute, then claims it
    (or not) against what the first committed."""
    payloads = {
        "newer": batch({0: [requests("local", "ok", 2)]}, sent_at=sent(2)),
        "older": batch({0: [requests("local", "ok", 1)]}, sent_at=sent(1)),
    }
    second = "older" if first == "newer" else "newer"
    holding, release = threading.Event(), threading.Event()
    results: dict[str, Any] = {}

    def write(name: str, hold: bool) -> None:
        try:
            with transaction.atomic():
                results[name] = telemetry_batch_ingest(source=GW, payload=payloads[name], now=NOW)
                if hold:
                    holding.set()
                    release.wait(10)
        except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread below
            results[name] = exc
        finally:
            connection.close()

    one = threading.Thread(target=write, args=(first, True))
    one.start()
    assert holding.wait(10)
    two = threading.Thread(target=write, args=(second, False))
    two.start()
    two.join(0.5)
    assert two.is_alive()  # blocked behind the first writer's uncommitted claim
    release.set()
    one.join(10)
    two.join(10)
    for outcome in results.values():
        if isinstance(outcome, Exception):
            raise outcome
    assert availability(slos)[0][1:] == (2, 2)
    assert results["older"].stale_minutes_ignored == (1 if first == "newer" else 0)
    assert results["newer"].stale_minutes_ignored == 0
