"""Push ingest on the real database: exact counts, idempotent re-sends, all-or-nothing validation,
coverage (missing minutes) and hourly rollups."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from controlplane.errors import ValidationFailed
from slo.models.telemetry import SeriesMinute, SliFeed, SliHour, SliHourPending, SliMinute
from slo.telemetry.ingest import telemetry_batch_ingest, telemetry_source_retire
from slo.telemetry.presence import PUSH_SILENCE_MINUTES
from slo.telemetry.retention import telemetry_retention_enforce
from slo.telemetry.selectors import contract_series, sli_hours, sli_minutes
from slo.telemetry.storage import telemetry_rollup_pending
from tests.slo.telemetry.conftest import (
    NOW,
    at,
    batch,
    cache,
    expected_standard,
    histogram,
    iso,
    requests,
    standard_minute,
)

pytestmark = pytest.mark.django_db
GW = "gateway:7"


def table_state() -> tuple[list[Any], ...]:
    return (
        sorted(SliHourPending.objects.values_list("slo_id", "hour")),
        sorted(SliMinute.objects.values_list("slo_id", "minute", "source", "good", "valid", "present")),
        sorted(SeriesMinute.objects.values_list("minute", "source", "name", "labels", "value")),
        sorted(SliHour.objects.values_list("slo_id", "hour", "good", "valid", "present_minutes")),
        sorted(SliFeed.objects.values_list("slo_id", "source", "mode", "first_minute", "last_minute")),
    )


def test_it_stores_exactly_the_known_counts(slos: dict[str, Any]) -> None:
    result = telemetry_batch_ingest(
        source=GW, payload=batch({k: standard_minute(k) for k in range(5)}), now=NOW
    )
    assert result.minutes == 5
    assert result.samples == 5 * len(standard_minute(0))
    assert set(result.slo_ids) == {s.pk for s in slos.values()}
    ids = [slos[name].pk for name in expected_standard(0)]
    data = sli_minutes(ids, at(0), at(5))
    assert data.present.all()
    for row, name in enumerate(expected_standard(0)):
        assert data.good[row].tolist() == [expected_standard(k)[name][0] for k in range(5)]
        assert data.valid[row].tolist() == [expected_standard(k)[name][1] for k in range(5)]
    # le spellings are normalised in the stored series: "0.150" and "0.15" are one boundary
    les = set(SeriesMinute.objects.filter(name__endswith="_bucket").values_list("labels", flat=True))
    assert "le=0.15,outcome=ok,route=cache" in les and "le=2.0,outcome=ok,route=cache" in les


def test_resending_changes_nothing(slos: dict[str, Any]) -> None:
    payload = batch({k: standard_minute(k) for k in range(3)})
    telemetry_batch_ingest(source=GW, payload=payload, now=NOW)
    before = table_state()
    telemetry_batch_ingest(source=GW, payload=payload, now=NOW)
    assert table_state() == before


def test_resending_a_minute_replaces_it_whole(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    telemetry_batch_ingest(source=GW, payload=batch({0: [requests("local", "ok", 5)]}), now=NOW)
    avail = slos["edge-availability"].pk
    data = sli_minutes([avail], at(0), at(1))
    assert (data.good[0, 0], data.valid[0, 0]) == (5, 5)
    # series the gateway no longer lists for the minute are gone, not left behind
    assert SeriesMinute.objects.count() == 1


def test_two_sources_add_up_and_each_is_expected(slos: dict[str, Any]) -> None:
    avail = slos["edge-availability"].pk
    telemetry_batch_ingest(
        source="gateway:1", payload=batch({0: [requests("local", "ok", 10)], 1: []}), now=NOW
    )
    telemetry_batch_ingest(source="gateway:2", payload=batch({0: [requests("local", "ok", 5)]}), now=NOW)
    data = sli_minutes([avail], at(0), at(2))
    assert data.present[0].tolist() == [True, False]  # gateway:2 has not reported minute 1
    assert data.good[0, 0] == 15
    telemetry_batch_ingest(source="gateway:2", payload=batch({1: [requests("local", "ok", 1)]}), now=NOW)
    data = sli_minutes([avail], at(0), at(2))
    assert data.present[0].tolist() == [True, True]
    assert data.good[0].tolist() == [15, 1]


def test_an_idle_minute_is_present_with_zero_events_and_an_unlisted_one_is_missing(
    slos: dict[str, Any],
) -> None:
    avail = slos["edge-availability"].pk
    telemetry_batch_ingest(
        source=GW, payload=batch({0: [requests("local", "ok", 10)], 1: [], 3: []}), now=NOW
    )
    data = sli_minutes([avail], at(0), at(4))
    assert data.present[0].tolist() == [True, True, False, True]
    assert data.valid[0].tolist() == [10, 0, 0, 0]


def test_a_silent_gateway_leaves_missing_minutes_until_presumed_gone(slos: dict[str, Any]) -> None:
    avail = slos["edge-availability"].pk
    telemetry_batch_ingest(source="gateway:1", payload=batch({0: [requests("local", "ok", 10)]}), now=NOW)
    telemetry_batch_ingest(
        source="gateway:2",
        payload=batch({k: [requests("local", "ok", 1)] for k in range(0, 70)}),
        now=NOW + timedelta(minutes=10),
    )
    data = sli_minutes([avail], at(0), at(70))
    silent = 1 + PUSH_SILENCE_MINUTES  # gateway:1 expected for an hour after its last minute
    assert data.present[0, 0] and not data.present[0, 1:silent].any() and data.present[0, silent:].all()
    # a retired gateway is not expected at all after its last minute
    telemetry_source_retire(source="gateway:1")
    assert sli_minutes([avail], at(0), at(70)).present[0].all()


def test_it_keeps_hourly_rollups_current(slos: dict[str, Any]) -> None:
    avail = slos["edge-availability"].pk
    # minutes 58..62 span two hours (11:58 .. 12:02 is in the future of NOW: use earlier minutes)
    result = telemetry_batch_ingest(
        source=GW, payload=batch({k: [requests("local", "ok", 10)] for k in range(50, 60)}), now=NOW
    )
    assert result.hours_pending == 3  # one hour, three SLOs
    assert telemetry_rollup_pending() == 3 and telemetry_rollup_pending() == 0
    hours = sli_hours([avail], at(0), at(60))
    assert hours.good[0].tolist() == [100] and hours.present_minutes[0].tolist() == [10]
    # re-sending one minute with other counts updates the rollup in the same transaction
    telemetry_batch_ingest(
        source=GW, payload=batch({55: [requests("local", "ok", 1), requests("local", "error", 1)]}), now=NOW
    )
    telemetry_rollup_pending()
    hours = sli_hours([avail], at(0), at(60))
    assert (hours.good[0, 0], hours.valid[0, 0], hours.present_minutes[0, 0]) == (91, 92, 10)


def test_rollups_cap_good_at_valid_per_minute(slos: dict[str, Any]) -> None:
    # a latency minute where the bucket count exceeds valid must not hide another minute's bad events
    lat = slos["edge-latency"].pk
    telemetry_batch_ingest(
        source=GW,
        payload=batch(
            {
                0: histogram("local", "ok", {"0.15": 5, "+Inf": 5}, 5),
                1: histogram("local", "ok", {"0.15": 0, "+Inf": 5}, 5),
            }
        ),
        now=NOW,
    )
    telemetry_rollup_pending()
    hours = sli_hours([lat], at(0), at(60))
    assert (hours.good[0, 0], hours.valid[0, 0]) == (5, 10)


def test_it_serves_contract_series_for_cost(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    frame = contract_series(start=at(0), end=at(1), names=["inference_cache_lookups_total"])
    assert sorted(frame["value"].tolist()) == [4.0, 9.0, 30.0]
    assert (frame["minute"] == at(0)).all() and set(frame["source"]) == {GW}


def test_a_threshold_that_is_no_bucket_boundary_leaves_the_minute_missing(
    shelf_service: Any, slo_doc: dict[str, Any]
) -> None:
    from slo.services import slo_create

    slo = slo_create(actor=None, data={**slo_doc, "sli": {"kind": "latency", "threshold_ms": 120}})
    telemetry_batch_ingest(
        source=GW, payload=batch({0: histogram("local", "ok", {"0.1": 5, "0.15": 6}, 6), 1: []}), now=NOW
    )
    data = sli_minutes([slo.pk], at(0), at(2))
    assert data.present[0].tolist() == [False, True]


def test_retention_deletes_old_minutes_and_hours(slos: dict[str, Any], settings: Any) -> None:
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    telemetry_rollup_pending()
    kept = telemetry_retention_enforce(now=NOW + timedelta(days=7))
    assert kept["sli_minutes"] == 0 and SliMinute.objects.exists()
    deleted = telemetry_retention_enforce(
        now=NOW + timedelta(days=settings.TELEMETRY_MINUTE_RETENTION_DAYS, hours=1)
    )
    assert deleted["sli_minutes"] == 3 and deleted["series_minutes"] == len(standard_minute(0))
    assert not SliMinute.objects.exists() and SliHour.objects.exists()
    telemetry_retention_enforce(now=NOW + timedelta(days=settings.TELEMETRY_HOUR_RETENTION_DAYS, hours=2))
    assert not SliHour.objects.exists()


# -- all or nothing ------------------------------------------------------------------------------


def _bad(payload: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(ValidationFailed) as exc_info:
        telemetry_batch_ingest(source=GW, payload=payload, now=NOW)
    assert table_state() == ([], [], [], [], [])
    return exc_info.value.problems


def _with(counter: dict[str, Any]) -> dict[str, Any]:
    """A valid first minute plus a second minute holding one (bad) counter."""
    return batch({0: standard_minute(0), 1: [counter]})


@pytest.mark.parametrize(
    ("payload", "path", "fragment"),
    [
        (
            _with(requests("local", "ok", 1, service="nope")),
            "minutes[1].counters[0].labels.service",
            "unknown service",
        ),
        (_with(requests("local", "ok", -1)), "minutes[1].counters[0].increase", "negative"),
        (_with(requests("local", "ok", 1.5)), "minutes[1].counters[0].increase", "whole number"),
        (_with(requests("teleport", "ok", 1)), "minutes[1].counters[0].labels.route", "not one of"),
        (
            _with({"name": "inference_requests_total", "labels": {"service": "shelf-vision"}, "increase": 1}),
            "minutes[1].counters[0].labels",
            "missing",
        ),
        (
            _with({"name": "nope_total", "labels": {}, "increase": 1}),
            "minutes[1].counters[0].name",
            "unknown metric",
        ),
        (
            _with({"name": "inference_requests_total", "labels": {}, "increase": "5"}),
            "minutes[1].counters[0].increase",
            "finite number",
        ),
        (
            batch({0: [], 1: histogram("local", "ok", {"0.1": 9, "0.15": 5, "+Inf": 9}, 9)}),
            "minutes[1].counters[1].increase",
            "must not decrease",
        ),
        (
            batch({0: [], 1: histogram("local", "ok", {"0.1": 5, "+Inf": 9}, 8)}),
            "minutes[1].counters[2].increase",
            "+Inf",
        ),
        (
            batch({0: [], 1: histogram("local", "ok", {"0.15": 1, "0.150": 1}, 1)}),
            "minutes[1].counters[1]",
            "listed twice",
        ),
        (
            batch({0: [], 1: [requests("local", "ok", 1, le="0.1")]}),
            "minutes[1].counters[0].labels",
            "unknown",
        ),
        (batch({0: [], 1: []}, contract_version=2), "contract_version", "must be 1"),
        (
            {"contract_version": 1, "minutes": [{"minute": "2025-03-01T11:00:30Z", "counters": []}]},
            "minutes[0].minute",
            "aligned",
        ),
        (
            {"contract_version": 1, "minutes": [{"minute": "2025-03-01T11:00:00", "counters": []}]},
            "minutes[0].minute",
            "UTC offset",
        ),
        (
            {
                "contract_version": 1,
                "minutes": [{"minute": iso(0), "counters": []}, {"minute": iso(0), "counters": []}],
            },
            "minutes[1].minute",
            "twice",
        ),
        ({"contract_version": 1, "minutes": []}, "minutes", "non-empty"),
        ({"contract_version": 1, "minutes": [{"minute": iso(0)}]}, "minutes[0].counters", "must be a list"),
        (
            {"contract_version": 1, "minutes": [{"minute": iso(0), "counters": []}], "extra": 1},
            "extra",
            "unknown field",
        ),
    ],
)
def test_a_bad_batch_is_rejected_whole_with_the_path(
    slos: dict[str, Any], payload: dict[str, Any], path: str, fragment: str
) -> None:
    problems = _bad(payload)
    assert any(p["path"] == path and fragment in p["message"] for p in problems), problems


def test_a_minute_in_the_future_beyond_the_clock_skew_is_rejected(slos: dict[str, Any]) -> None:
    # NOW is 12:00:30; minute 12:01 ends at 12:02:00, within 120 s of skew; 12:02 ends too late
    ok = {"contract_version": 1, "minutes": [{"minute": iso(61), "counters": []}]}
    telemetry_batch_ingest(source=GW, payload=ok, now=NOW)
    SliMinute.objects.all().delete()
    SeriesMinute.objects.all().delete()
    SliFeed.objects.all().delete()
    SliHour.objects.all().delete()
    SliHourPending.objects.all().delete()
    problems = _bad({"contract_version": 1, "minutes": [{"minute": iso(62), "counters": []}]})
    assert problems[0]["path"] == "minutes[0].minute" and "future" in problems[0]["message"]


def test_too_many_minutes_or_too_old_minutes_are_rejected(slos: dict[str, Any]) -> None:
    from slo.telemetry.batch_format import MAX_BATCH_MINUTES

    many = {
        "contract_version": 1,
        "minutes": [{"minute": iso(-k), "counters": []} for k in range(MAX_BATCH_MINUTES + 1)],
    }
    assert "at most" in _bad(many)[0]["message"]
    old = {"contract_version": 1, "minutes": [{"minute": iso(-60 * 24 * 9), "counters": []}]}
    assert "retention" in _bad(old)[0]["message"]


def test_an_invalid_source_is_rejected(slos: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        telemetry_batch_ingest(source="no spaces allowed", payload=batch({0: []}), now=NOW)


def test_gauges_are_stored_as_series(slos: dict[str, Any]) -> None:
    payload = batch({0: [cache("hit", 1)]})
    payload["minutes"][0]["gauges"] = [
        {"name": "inference_queue_depth", "labels": {"service": "shelf-vision", "tier": "edge"}, "value": 3},
        {
            "name": "inference_device_temperature_celsius",
            "labels": {"tier": "edge", "device": "npu0"},
            "value": -4.5,
        },
    ]
    result = telemetry_batch_ingest(source=GW, payload=payload, now=NOW)
    assert result.samples == 3
    assert SeriesMinute.objects.get(name="inference_device_temperature_celsius").value == -4.5


def test_minute_arrays_are_numpy_friendly(slos: dict[str, Any]) -> None:
    telemetry_batch_ingest(source=GW, payload=batch({0: standard_minute(0)}), now=NOW)
    data = sli_minutes([slos["edge-latency"].pk, 999_999], at(0), at(2))
    assert data.good.dtype == np.int64 and data.present.dtype == np.bool_
    assert data.good.shape == (2, 2) and not data.present[1].any()


def test_free_label_text_is_stored_verbatim(slos: dict[str, Any]) -> None:
    # COPY's text format escapes backslashes; a label value must come back exactly as sent
    payload = batch({0: []})
    payload["minutes"][0]["gauges"] = [
        {
            "name": "inference_device_temperature_celsius",
            "labels": {"tier": "edge", "device": "npu\\0 \\t"},
            "value": 1e-300,
        },
    ]
    telemetry_batch_ingest(source=GW, payload=payload, now=NOW)
    row = SeriesMinute.objects.get(name="inference_device_temperature_celsius")
    assert row.labels == "device=npu\\0 \\t" and row.value == 1e-300


def test_the_sql_targets_match_the_orm_targets(slos: dict[str, Any], slo_doc: dict[str, Any]) -> None:
    from slo.models import Slo
    from slo.services import service_create, slo_create
    from slo.telemetry import ingest as telemetry
    from slo.telemetry.batch import parse_push_batch
    from slo.telemetry.sql import run_statements_fetch_last

    other = service_create(
        actor=None, data={"name": "other-svc", "service_class": "batch", "tiers": ["edge"]}
    )
    fed_elsewhere = slo_create(actor=None, data={**slo_doc, "service": other.name, "name": "fed-elsewhere"})
    slo_create(actor=None, data={**slo_doc, "service": other.name, "name": "unrelated"})
    cloud = slo_create(actor=None, data={**slo_doc, "name": "cloud", "tier": "public_cloud"})
    SliFeed.objects.create(slo_id=fed_elsewhere.pk, source=GW, mode="push", first_minute=0, last_minute=1)
    SliFeed.objects.create(
        slo_id=cloud.pk, source="gateway:other", mode="push", first_minute=0, last_minute=1
    )
    Slo.objects.filter(pk=slos["edge-correctness"].pk).update(archived_at=NOW)
    for payload in (batch({0: standard_minute(0)}), batch({0: []})):
        parsed, _ = parse_push_batch(payload, known_services={"shelf-vision"}, now_s=NOW.timestamp())
        assert parsed is not None
        orm = {t.slo_id for t in telemetry._push_targets(GW, parsed)}
        sql = {
            t.slo_id
            for t in telemetry._push_targets_from_rows(
                run_statements_fetch_last([("SELECT 1", []), telemetry._push_targets_statement(GW, parsed)]),
                parsed,
            )
        }
        assert sql == orm
        assert fed_elsewhere.pk in sql and cloud.pk not in sql and slos["edge-correctness"].pk not in sql


@pytest.mark.parametrize(
    ("values", "sql_type"),
    [
        ([1, -2, 2**62], "bigint"),
        ([True, False], "boolean"),
        ([0.1, 1e-300, 1.7e9], "double precision"),
        (["gateway:1", 'a"b', "back\\slash", "", "{x,y}", "NULL"], "text"),
    ],
)
def test_array_literals_round_trip(values: list[Any], sql_type: str) -> None:
    from django.db import connection

    from slo.telemetry.sql import array_literal

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT %s::{sql_type}[]", [array_literal(values)])
        assert cursor.fetchone()[0] == values
