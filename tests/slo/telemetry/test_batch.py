"""The push batch validator (pure): the lean pass agrees with the full check on every batch, and the
series cache stays bounded and never skips the per-batch known-service check."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.telemetry import batch as push_batch
from slo.telemetry.batch import parse_push_batch
from slo.telemetry.batch_check import parse_checked
from tests.slo.telemetry.conftest import NOW, batch, histogram, requests, standard_minute

KNOWN = {"shelf-vision"}


def both(payload: Any, known: set[str] = KNOWN) -> tuple[Any, Any]:
    """(public result, full-check result) of one payload."""
    public = parse_push_batch(payload, known_services=known, now_s=NOW.timestamp())
    checked = parse_checked(payload, known_services=known, now_s=NOW.timestamp())
    return public, checked


def assert_agree(payload: Any, known: set[str] = KNOWN) -> None:
    (parsed, problems), (checked, checked_problems) = both(payload, known)
    assert problems == checked_problems
    assert (parsed is None) == (checked is None)
    if parsed is not None:
        assert parsed.minutes == checked.minutes and parsed.gateway == checked.gateway
        assert parsed.sent_at_us == checked.sent_at_us
        assert parsed.samples == checked.samples


def base_payload() -> dict[str, Any]:
    payload = batch({k: standard_minute(k) for k in range(3)})
    payload["minutes"][1]["gauges"] = [
        {"name": "inference_queue_depth", "labels": {"service": "shelf-vision", "tier": "edge"}, "value": 3},
        {
            "name": "inference_device_temperature_celsius",
            "labels": {"tier": "edge", "device": "npu\\0"},
            "value": -4.5,
        },
    ]
    return payload


BAD_VALUES = [
    -1,
    1.5,
    "5",
    True,
    None,
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    0,
    2.0,
    10**20,
    -0.0,
    1e308,
    10**9,
    10**9 + 1,
    1e9 + 1,
    1e15,
    1e15 + 1,
    -1e15,
    -1e16,
]
SENT_AT = [
    "2025-03-01T12:00:00Z",
    "2025-03-01T12:02:30.5+00:00",
    "2025-03-01T12:02:31Z",
    "2025-03-01T12:00:00",
    "yesterday",
    1740830400,
    None,
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-14:00",
]
BAD_TEXT = ["", "nope", "teleport", "0.150", "+Inf", "a,b", "x=y", "tab\there", "π", 7, None, ["edge"]]


@st.composite
def mutated(draw: Any) -> dict[str, Any]:
    """A valid batch with a few random changes, most of which make it invalid."""
    payload = base_payload()
    for _ in range(draw(st.integers(0, 3))):
        minute = draw(st.sampled_from(payload["minutes"]))
        items = minute["counters"]
        kind = draw(
            st.sampled_from(
                [
                    "value",
                    "label",
                    "drop_label",
                    "add_label",
                    "duplicate",
                    "name",
                    "minute",
                    "field",
                    "item",
                    "gauge",
                    "sent_at",
                ]
            )
        )
        if kind == "sent_at":
            payload["sent_at"] = draw(st.sampled_from(SENT_AT))
            continue
        if not items:
            continue
        i = draw(st.integers(0, len(items) - 1))
        item = items[i]
        if not isinstance(item, dict):
            continue
        if kind == "value":
            item["increase"] = draw(st.sampled_from(BAD_VALUES))
        elif kind == "label" and isinstance(item.get("labels"), dict) and item["labels"]:
            key = draw(st.sampled_from(sorted(item["labels"])))
            item["labels"][key] = draw(st.sampled_from(BAD_TEXT))
        elif kind == "drop_label" and isinstance(item.get("labels"), dict) and item["labels"]:
            item["labels"].pop(draw(st.sampled_from(sorted(item["labels"]))))
        elif kind == "add_label" and isinstance(item.get("labels"), dict):
            item["labels"][draw(st.sampled_from(["le", "zone", "route"]))] = draw(
                st.sampled_from(["0.1", "x"])
            )
        elif kind == "duplicate":
            items.append(copy.deepcopy(item))
        elif kind == "name":
            item["name"] = draw(
                st.sampled_from(
                    ["nope_total", "inference_queue_depth", 3, "inference_request_duration_seconds_count"]
                )
            )
        elif kind == "minute":
            minute["minute"] = draw(
                st.sampled_from(
                    [
                        "2025-03-01T11:00:30Z",
                        "2025-03-01T11:00:00",
                        5,
                        "2025-03-01T12:05:00Z",
                        payload["minutes"][0]["minute"],
                    ]
                )
            )
        elif kind == "field":
            item[draw(st.sampled_from(["extra", "value"]))] = 1
        elif kind == "item":
            items[i] = draw(st.sampled_from([[], "x", {}, {"name": "inference_requests_total"}]))
        elif kind == "gauge":
            gauges = payload["minutes"][1]["gauges"]
            gauges[draw(st.integers(0, 1))]["value"] = draw(st.sampled_from(BAD_VALUES))
    return payload


@settings(max_examples=300, deadline=None)
@given(mutated(), st.sampled_from([KNOWN, set(), {"other"}]))
def test_the_lean_pass_and_the_full_check_agree(payload: dict[str, Any], known: set[str]) -> None:
    assert_agree(payload, known)


@given(
    st.lists(
        st.tuples(st.sampled_from(["0.1", "0.15", "0.2", "+Inf"]), st.integers(0, 50)),
        min_size=1,
        max_size=4,
        unique_by=lambda x: x[0],
    ),
    st.integers(0, 60),
)
def test_histogram_rules_agree(buckets: list[tuple[str, int]], count: int) -> None:
    assert_agree(batch({0: histogram("local", "ok", dict(buckets), count)}))


def test_a_valid_batch_takes_the_lean_pass() -> None:
    payload = base_payload()
    parsed = push_batch._parse_lean(payload, KNOWN, NOW.timestamp(), None, 180, 100_000)
    assert parsed is not None and len(parsed.points) == 3 * len(standard_minute(0)) + 2
    assert_agree(payload)


def test_an_int_beyond_any_float_is_a_problem_not_a_crash() -> None:
    parsed, problems = parse_push_batch(
        batch({0: [requests("local", "ok", 10**400)]}), known_services=KNOWN, now_s=NOW.timestamp()
    )
    assert parsed is None
    assert problems[0].path == "minutes[0].counters[0].increase" and "finite" in problems[0].message


def test_int_subclasses_are_still_accepted_by_the_full_check() -> None:
    class Count(int):
        pass

    payload = batch({0: [requests("local", "ok", Count(5))]})
    parsed, problems = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
    assert problems == [] and parsed is not None and parsed.samples[0].value == 5.0


def test_a_cached_series_is_still_checked_against_the_known_services() -> None:
    payload = batch({0: [requests("local", "ok", 1)]})
    assert parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())[0] is not None
    parsed, problems = parse_push_batch(payload, known_services=set(), now_s=NOW.timestamp())
    assert parsed is None and problems[0].path == "minutes[0].counters[0].labels.service"


def test_the_series_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(push_batch, "MAX_CACHED_SERIES", 10)
    for k in range(30):
        payload = batch(
            {
                0: [
                    {
                        "name": "inference_compute_seconds_total",
                        "labels": {"service": "shelf-vision", "tier": "edge", "accelerator": f"gpu{k}"},
                        "increase": 1.5,
                    }
                ]
            }
        )
        parsed, problems = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
        assert problems == [] and parsed is not None and parsed.samples[0].series == f"accelerator=gpu{k}"
        assert len(push_batch._series_cache) <= 10


def test_the_cache_does_not_alias_the_payload() -> None:
    payload = batch({0: [requests("local", "ok", 1)]})
    parsed, _ = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
    payload["minutes"][0]["counters"][0]["labels"]["route"] = "teleport"
    assert parsed is not None and parsed.samples[0].labels["route"] == "local"
    again, _ = parse_push_batch(
        batch({0: [requests("local", "ok", 1)]}), known_services=KNOWN, now_s=NOW.timestamp()
    )
    assert again is not None and again.samples[0].labels["route"] == "local"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1e308, "at most 1,000,000,000 events"),  # a float bigint cannot hold: 400, never a 500
        (10**9 + 1, "at most 1,000,000,000 events"),
        (10**19, "at most 1,000,000,000 events"),
        (-3, "must not be negative"),
        (2.5, "whole number"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (True, "finite number"),
        ("7", "finite number"),
    ],
)
def test_an_event_count_out_of_bounds_is_a_problem_with_its_path(value: Any, message: str) -> None:
    parsed, problems = parse_push_batch(
        batch({0: [requests("local", "ok", 1), requests("local", "error", value)]}),
        known_services=KNOWN,
        now_s=NOW.timestamp(),
    )
    assert parsed is None
    assert [p.path for p in problems] == ["minutes[0].counters[1].increase"] and message in problems[
        0
    ].message
    assert_agree(batch({0: [requests("local", "error", value)]}))


def test_the_largest_event_count_is_accepted() -> None:
    parsed, problems = parse_push_batch(
        batch({0: [requests("local", "ok", 10**9)]}), known_services=KNOWN, now_s=NOW.timestamp()
    )
    assert problems == [] and parsed is not None and parsed.points[0][2] == 1e9


def test_amounts_and_gauges_are_bounded_too() -> None:
    seconds = {
        "name": "inference_compute_seconds_total",
        "labels": {"service": "shelf-vision", "tier": "edge", "accelerator": "npu"},
        "increase": 1e308,
    }
    payload = batch({0: [seconds]})
    payload["minutes"][0]["gauges"] = [
        {
            "name": "inference_queue_depth",
            "labels": {"service": "shelf-vision", "tier": "edge"},
            "value": -1e300,
        }
    ]
    parsed, problems = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
    assert parsed is None
    assert [p.path for p in problems] == ["minutes[0].counters[0].increase", "minutes[0].gauges[0].value"]
    assert_agree(payload)


def test_sent_at_is_parsed_to_microseconds_and_may_not_run_ahead_of_our_clock() -> None:
    payload = batch({0: standard_minute(0)}, sent_at="2025-03-01T12:00:29.000001+00:00")
    parsed, problems = parse_push_batch(payload, known_services=KNOWN, now_s=NOW.timestamp())
    assert problems == [] and parsed is not None
    assert parsed.sent_at_us == int(NOW.timestamp() - 1) * 1_000_000 + 1
    assert parse_push_batch(batch({0: []}), known_services=KNOWN, now_s=NOW.timestamp())[0].sent_at_us is None
    for bad, message in [
        ("2025-03-01T12:02:31Z", "ahead of the control plane's clock"),
        ("2025-03-01T12:00:00", "UTC offset"),
        (1740830400, "ISO 8601"),
    ]:
        parsed, problems = parse_push_batch(
            batch({0: []}, sent_at=bad), known_services=KNOWN, now_s=NOW.timestamp()
        )
        assert parsed is None and [p.path for p in problems] == ["sent_at"] and message in problems[0].message
