"""Cost per hit: the pure math with numbers worked out by hand."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slo.budget.cost import Prices, Usage, compute_costs, merge_usage, parse_prices, quantile_upper_bound

PRICES = {
    "compute_usd_per_s": {
        "edge": {"npu": 0.0},
        "private_cloud": {"gpu": 0.001},
        "public_cloud": {"gpu": 0.002},
    },
    "egress_usd_per_gb": {"edge": 0.05, "public_cloud": 0.09},
    "request_fee_usd": {"public_cloud": 0.0001},
    "edge_device_usd_per_hour": 0.5,
    "cache_usd_per_lookup": 0.00001,
    "sla_penalty_usd_per_bad_event": 0.01,
    "stale_hit_cost_usd": 0.002,
    "sla": {"public_cloud": {"p95_ms": 200, "p99_ms": 400, "availability_percent": 99.9}},
}


def usage() -> Usage:
    return Usage(
        hours=1,
        requests={"local": 6000, "cache": 3000, "private_cloud": 600, "public_cloud": 400},
        fallbacks_from={"private_cloud": 100},  # 100 private attempts failed and went public
        retries={"public_cloud": 50},
        compute_seconds={("edge", "npu"): 3000, ("private_cloud", "gpu"): 1000, ("public_cloud", "gpu"): 500},
        egress_bytes={"public_cloud": 2e9, "local": 1e9},
        cache_hits=2800,
        cache_stale_hits=200,
        cache_misses=7000,
        edge_device_hours=4,
        bad_events=10,
        latency_buckets={"public_cloud": [(0.1, 300), (0.2, 385), (0.5, 398), (math.inf, 400)]},
        availability={"public_cloud": (399, 400)},
    )


def test_it_computes_every_figure_from_known_numbers():
    prices, problems = parse_prices(PRICES)
    assert problems == []
    f = compute_costs(usage(), prices)
    # compute: private 1000 x 0.001 = 1.0, public 500 x 0.002 = 1.0; egress: public 2 GB x 0.09 = 0.18,
    # local 1 GB x 0.05 = 0.05; fees: public (400 + 50 retries) x 0.0001 = 0.045; cache: 10,000 lookups
    # x 0.00001 = 0.1; devices 4 h x 0.5 = 2.0 split local 6000 : cache 3000.
    assert f.routes["public_cloud"].cost_usd == pytest.approx(1.0 + 0.18 + 0.045)
    assert f.routes["private_cloud"].cost_usd == pytest.approx(1.0)
    assert f.routes["private_cloud"].attempts == 700
    assert f.routes["local"].cost_usd == pytest.approx(0.05 + 2.0 * 2 / 3)
    assert f.routes["cache"].cost_usd == pytest.approx(0.1 + 2.0 / 3)
    direct = 1.0 + 1.225 + 0.05 + 2.0 + 0.1
    assert f.direct_cost_usd == pytest.approx(direct)
    assert f.sla_penalty_usd == pytest.approx(0.1)
    assert f.stale_hit_cost_usd == pytest.approx(0.4)
    assert f.all_in_cost_usd == pytest.approx(direct + 0.5)
    assert f.cost_per_request_usd == pytest.approx((direct + 0.5) / 10_000)
    assert f.retry_and_fallback_cost_usd == pytest.approx(50 * 0.0001)
    assert f.cost_per_1000_by_tier_usd["edge"] == pytest.approx((0.05 + 2.0 + 0.1) / 9000 * 1000)
    assert f.cost_per_1000_by_tier_usd["public_cloud"] == pytest.approx(1.225 / 400 * 1000)
    per_hit = (0.1 + 2.0 / 3) / 3000
    assert f.cost_per_cache_hit_usd == pytest.approx(per_hit)
    miss = (0.05 + 4 / 3 + 1.0 + 1.225) / 7000
    assert f.miss_path_cost_per_request_usd == pytest.approx(miss)
    assert f.saved_per_hit_usd == pytest.approx(miss - per_hit)
    assert f.net_saving_usd == pytest.approx(3000 * (miss - per_hit) - 0.4)
    (check,) = f.sla
    assert (check.measured_p95_ms, check.measured_p99_ms) == (200.0, 500.0)
    assert check.measured_availability_percent == pytest.approx(99.75)
    assert check.breaches == ["p99 500 ms > promised 400 ms", "availability 99.75% < promised 99.9%"]


def test_no_traffic_is_not_free_but_undefined():
    f = compute_costs(Usage(hours=1), Prices())
    assert f.cost_per_request_usd is None and f.cost_per_cache_hit_usd is None and f.saved_per_hit_usd is None
    assert f.as_dict()["cost_per_1000_by_tier_usd"] == {
        "edge": None,
        "private_cloud": None,
        "public_cloud": None,
    }


def test_it_refuses_unknown_tiers_routes_and_negative_prices():
    _, problems = parse_prices({"compute_usd_per_s": {"moon": {"gpu": 1}}, "request_fee_usd": {"x": 1}})
    assert {p["path"] for p in problems} == {"prices.moon", "prices.request_fee_usd.x"}
    _, problems = parse_prices({"edge_device_usd_per_hour": -1})
    assert problems and problems[0]["path"] == "prices.edge_device_usd_per_hour"
    _, problems = parse_prices({"bogus": 1})
    assert problems


def test_quantile_is_a_conservative_bucket_bound():
    buckets = [(0.1, 90), (0.2, 99), (math.inf, 100)]
    assert quantile_upper_bound(buckets, 0.9) == 0.1
    assert quantile_upper_bound(buckets, 0.95) == 0.2
    assert quantile_upper_bound(buckets, 0.999) == math.inf
    assert quantile_upper_bound([], 0.5) is None


@given(st.integers(1, 24))
def test_merging_hours_adds_up_to_the_day(hours):
    parts = [usage() for _ in range(hours)]
    day = compute_costs(merge_usage(parts), Prices.model_validate(PRICES))
    one = compute_costs(usage(), Prices.model_validate(PRICES))
    assert day.all_in_cost_usd == pytest.approx(one.all_in_cost_usd * hours)
    assert day.cost_per_request_usd == pytest.approx(one.cost_per_request_usd)
