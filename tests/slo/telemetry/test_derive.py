"""Pure derivation of SLI minutes from pushed series, and the pure coverage rule (no database)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from slo.telemetry.batch import parse_push_batch
from slo.telemetry.derive import SliRow, derive_sli_rows, sli_target
from slo.telemetry.presence import expected_feeds, present_mask
from tests.slo.telemetry.conftest import (
    NOW,
    batch,
    cache,
    expected_standard,
    histogram,
    requests,
    standard_minute,
)

SPEC = {"service": "shelf-vision", "tier": "edge"}
TARGETS = {
    "edge-latency": sli_target(1, {**SPEC, "sli": {"kind": "latency", "threshold_ms": 150}}),
    "edge-availability": sli_target(2, {**SPEC, "sli": {"kind": "availability"}}),
    "edge-correctness": sli_target(3, {**SPEC, "sli": {"kind": "correctness"}}),
}


def derive(payload: dict[str, Any], *targets: Any) -> list[SliRow]:
    parsed, problems = parse_push_batch(payload, known_services={"shelf-vision"}, now_s=NOW.timestamp())
    assert parsed is not None, problems
    return derive_sli_rows(parsed, targets)


def test_it_derives_each_kind_as_the_contract_defines_it() -> None:
    for name, target in TARGETS.items():
        rows = derive(batch({k: standard_minute(k) for k in range(4)}), target)
        assert [(r.good, r.valid) for r in rows] == [expected_standard(k)[name] for k in range(4)]
        assert all(r.present for r in rows)


def test_a_custom_sli_cannot_be_fed_by_pushes() -> None:
    assert sli_target(9, {**SPEC, "sli": {"kind": "custom", "total_query": "x", "good_query": "y"}}) is None


def test_other_tiers_and_services_do_not_count_but_an_sli_without_tier_sums_them() -> None:
    payload = batch({0: [requests("local", "ok", 5), requests("public_cloud", "ok", 7, tier="public_cloud")]})
    assert [(r.good, r.valid) for r in derive(payload, TARGETS["edge-availability"])] == [(5, 5)]
    any_tier = sli_target(4, {"service": "shelf-vision", "sli": {"kind": "availability"}})
    assert [(r.good, r.valid) for r in derive(payload, any_tier)] == [(12, 12)]


@given(
    st.sampled_from(["0.15", "0.150", ".15", "1.5e-01", "1.50E-1", "0.1500"]),
    st.integers(0, 1000),
    st.integers(0, 1000),
)
def test_le_spelling_does_not_matter(spelling: str, fast: int, slow: int) -> None:
    payload = batch({0: histogram("local", "ok", {spelling: fast, "+Inf": fast + slow}, fast + slow)})
    [row] = derive(payload, TARGETS["edge-latency"])
    assert (row.good, row.valid, row.present) == (fast, fast + slow, True)


@given(
    st.lists(
        st.tuples(st.sampled_from(["ok", "error", "timeout", "shed"]), st.integers(0, 10**6)),
        max_size=4,
        unique_by=lambda x: x[0],
    )
)
def test_availability_counts_ok_out_of_non_shed_requests(counts: list[tuple[str, int]]) -> None:
    [row] = derive(batch({0: [requests("local", o, n) for o, n in counts]}), TARGETS["edge-availability"])
    by = dict(counts)
    assert row.good == by.get("ok", 0)
    assert row.valid == sum(n for o, n in counts if o != "shed")
    assert row.good <= row.valid


def test_presence_needs_every_expected_feed() -> None:
    feeds = [(1, "push", 0, 4), (1, "pull", 2, 3), (2, "retired", 0, 1)]
    expected = expected_feeds(feeds, {1: 0, 2: 1}, 0, 6, push_silence_minutes=1)
    assert expected.tolist() == [[1, 1, 2, 2, 2, 2], [1, 1, 0, 0, 0, 0]]
    n_present = np.array([[1, 1, 1, 2, 2, 0], [1, 0, 0, 0, 0, 0]])
    n_gaps = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    assert present_mask(n_present, n_gaps, expected).tolist() == [
        [True, False, False, True, True, False],
        [True, False, False, False, False, False],
    ]


# -- the grouped derivation equals the per-minute definition -------------------------------------


def reference_rows(parsed: Any, target: Any) -> list[tuple[int, int, bool]]:
    """The definition, minute by minute over `samples` (the pre-optimisation algorithm)."""
    out = []
    for minute in parsed.minutes:
        mine = [
            s
            for s in parsed.samples
            if s.minute == minute
            and s.service == target.service
            and (target.tier is None or s.tier == target.tier)
        ]
        if target.kind == "availability":
            valid = [
                s
                for s in mine
                if s.name == "inference_requests_total" and s.labels["outcome"] in ("ok", "error", "timeout")
            ]
            out.append(
                (
                    int(sum(s.value for s in valid if s.labels["outcome"] == "ok")),
                    int(sum(s.value for s in valid)),
                    True,
                )
            )
        elif target.kind == "correctness":
            hits = [
                s
                for s in mine
                if s.name == "inference_cache_lookups_total"
                and s.labels["result"] in ("hit", "stale_hit", "semantic_hit")
            ]
            total = sum(s.value for s in hits)
            out.append(
                (
                    int(total - sum(s.value for s in hits if s.labels["result"] == "stale_hit")),
                    int(total),
                    True,
                )
            )
        else:  # latency
            base = "inference_request_duration_seconds"
            counts = [
                s for s in mine if s.name == f"{base}_count" and s.labels["outcome"] in ("ok", "timeout")
            ]
            buckets = [s for s in mine if s.name == f"{base}_bucket" and s.labels["outcome"] == "ok"]
            need = {(s.tier, s.series) for s in buckets} | {
                (s.tier, s.series) for s in counts if s.labels["outcome"] == "ok" and s.value > 0
            }
            at = [s for s in buckets if s.le == target.threshold_s]
            if not need <= {(s.tier, s.series) for s in at}:
                out.append((0, 0, False))
            else:
                out.append((int(sum(s.value for s in at)), int(sum(s.value for s in counts)), True))
    return out


@st.composite
def random_minute(draw: Any) -> list[dict[str, Any]]:
    counters: list[dict[str, Any]] = []
    for route in draw(st.sets(st.sampled_from(["local", "cache"]), max_size=2)):
        tier = draw(st.sampled_from(["edge", "public_cloud"]))
        for outcome in draw(st.sets(st.sampled_from(["ok", "error", "timeout", "shed"]), max_size=3)):
            counters.append(requests(route, outcome, draw(st.integers(0, 50)), tier=tier))
        for outcome in draw(st.sets(st.sampled_from(["ok", "timeout"]), max_size=2)):
            les = sorted(draw(st.sets(st.sampled_from([0.1, 0.15, 0.2, 2.0]), max_size=3)))
            running = 0
            buckets = {}
            for le in les:
                running += draw(st.integers(0, 9))
                buckets[draw(st.sampled_from([repr(le), f"{le:.3f}"]))] = running
            total = running + draw(st.integers(0, 3))
            if draw(st.booleans()):
                buckets["+Inf"] = total
            counters.extend(histogram(route, outcome, buckets, total, tier=tier))
    for result in draw(st.sets(st.sampled_from(["hit", "miss", "stale_hit", "semantic_hit"]), max_size=4)):
        counters.append(cache(result, draw(st.integers(0, 30))))
    return counters


@given(st.lists(random_minute(), min_size=1, max_size=4), st.sampled_from([None, "edge"]))
def test_grouped_derivation_equals_the_definition(
    minutes: list[list[dict[str, Any]]], tier: str | None
) -> None:
    parsed, problems = parse_push_batch(
        batch(dict(enumerate(minutes))), known_services={"shelf-vision"}, now_s=NOW.timestamp()
    )
    assert parsed is not None, problems
    spec = {"service": "shelf-vision", **({"tier": tier} if tier else {})}
    targets = [
        sli_target(i, {**spec, "sli": sli})
        for i, sli in enumerate(
            [{"kind": "latency", "threshold_ms": 150}, {"kind": "availability"}, {"kind": "correctness"}]
        )
    ]
    rows = derive_sli_rows(parsed, targets)
    for target in targets:
        mine = [(r.good, r.valid, r.present) for r in rows if r.slo_id == target.slo_id]
        assert mine == reference_rows(parsed, target)
