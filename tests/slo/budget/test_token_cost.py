"""Token-based cost: prices per 1,000 input and output tokens per provider and model, in the
versioned cost model, and cost per 1k tokens and per request by route and tier, by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slo.budget.cost import Usage, compute_costs, parse_prices

PRICES = {
    "compute_usd_per_s": {"private_cloud": {"gpu": 0.001}},
    "request_fee_usd": {"public_cloud": 0.0001},
    "token_usd_per_1k": {
        "acme": {"acme-large": {"input": 0.5, "output": 1.5}},
        "self": {"llama-3-8b": {"input": 0.0, "output": 0.0}},
    },
}


def usage() -> Usage:
    return Usage(
        hours=1,
        requests={"public_cloud": 400, "private_cloud": 600},
        compute_seconds={("private_cloud", "gpu"): 1000},
        tokens={
            ("public_cloud", "acme", "acme-large", "input"): 200_000,
            ("public_cloud", "acme", "acme-large", "output"): 40_000,
            ("private_cloud", "self", "llama-3-8b", "input"): 300_000,
            ("private_cloud", "self", "llama-3-8b", "output"): 60_000,
            ("local", "mystery", "m", "output"): 1_000,  # no price in this model
        },
    )


def test_token_cost_per_1k_tokens_and_per_request_by_hand():
    prices, problems = parse_prices(PRICES)
    assert problems == [] and prices is not None
    f = compute_costs(usage(), prices)
    # public cloud: 200k input x 0.5/1k = 100, 40k output x 1.5/1k = 60; fees 400 x 0.0001 = 0.04
    public = f.routes["public_cloud"]
    assert public.token_cost_usd == pytest.approx(160.0)
    assert public.cost_usd == pytest.approx(160.04)
    assert public.cost_per_request_usd == pytest.approx(160.04 / 400)
    assert (public.input_tokens, public.output_tokens) == (200_000, 40_000)
    assert public.cost_per_1k_tokens_usd == pytest.approx(160.04 / 240)
    # private cloud: self-hosted tokens are free; its compute (1000 s x 0.001 = 1.0) is the cost
    private = f.routes["private_cloud"]
    assert private.token_cost_usd == 0 and private.cost_usd == pytest.approx(1.0)
    assert private.cost_per_1k_tokens_usd == pytest.approx(1.0 / 360)
    assert private.cost_per_request_usd == pytest.approx(1.0 / 600)
    # an unpriced model costs nothing and is counted, not hidden
    assert f.unpriced_tokens == 1_000 and f.routes["local"].cost_per_1k_tokens_usd == 0
    assert f.token_cost_usd == pytest.approx(160.0)
    assert (f.input_tokens, f.output_tokens) == (500_000, 101_000)
    assert f.direct_cost_usd == pytest.approx(161.04)
    assert f.cost_per_1k_tokens_usd == pytest.approx(161.04 / 601)
    assert f.cost_per_1k_tokens_by_tier_usd == pytest.approx(
        {"edge": 0.0, "private_cloud": 1.0 / 360, "public_cloud": 160.04 / 240}
    )
    # beside the compute-based figures, which still hold: per 1,000 requests by tier
    assert f.cost_per_1000_by_tier_usd["public_cloud"] == pytest.approx(160.04 / 400 * 1000)
    assert f.as_dict()["routes"]["public_cloud"]["token_cost_usd"] == pytest.approx(160.0)


def test_negative_or_malformed_token_prices_are_refused_with_their_path():
    _, problems = parse_prices({"token_usd_per_1k": {"acme": {"acme-large": {"input": 1, "output": -2}}}})
    assert [p["path"] for p in problems] == ["prices.token_usd_per_1k.acme.acme-large.output"]
    _, problems = parse_prices({"token_usd_per_1k": {"acme": {"acme-large": {"cached": 1}}}})
    assert [p["path"] for p in problems] == ["prices.token_usd_per_1k.acme.acme-large.cached"]


@pytest.mark.django_db
def test_token_prices_are_versioned_and_a_bad_one_is_a_400_that_stores_nothing(api_for):
    from slo.models.budget import CostModel

    admin = api_for("admin")
    bad = admin.post(
        "/api/v1/cost-models/",
        {"prices": {"token_usd_per_1k": {"acme": {"acme-large": {"input": -0.5}}}}},
        format="json",
    )
    assert bad.status_code == 400
    assert [e["path"] for e in bad.json()["errors"]] == ["prices.token_usd_per_1k.acme.acme-large.input"]
    assert CostModel.objects.count() == 0
    first = admin.post("/api/v1/cost-models/", {"prices": PRICES}, format="json")
    cheaper = {**PRICES, "token_usd_per_1k": {"acme": {"acme-large": {"input": 0.25, "output": 1.0}}}}
    second = admin.post("/api/v1/cost-models/", {"prices": cheaper}, format="json")
    assert (first.status_code, second.status_code) == (201, 201)
    assert [
        m.prices["token_usd_per_1k"]["acme"]["acme-large"] for m in CostModel.objects.order_by("version")
    ] == [
        {"input": 0.5, "output": 1.5},
        {"input": 0.25, "output": 1.0},
    ]


@pytest.mark.django_db
def test_pushed_tokens_roll_up_to_cost_per_1k_tokens_by_route_and_tier(users, service):
    """Tokens pushed by a gateway, rolled up with the cost model in force, summed in the report."""
    from slo.budget import services
    from slo.models.budget import CostRollup
    from slo.reports.cost import CostRow, cost_summary
    from slo.telemetry.ingest import telemetry_batch_ingest

    hour = datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    services.cost_model_create(
        actor=users["admin"],
        data={"prices": PRICES, "effective_from": (hour - timedelta(days=1)).isoformat()},
    )

    def series(name: str, n: int, **labels: str) -> dict:
        return {"name": name, "labels": {"service": "shelf-vision", "tier": "public_cloud", **labels}, "n": n}

    per_minute = [
        series(
            "inference_requests_total", 4, route="public_cloud", outcome="ok", service_class="interactive"
        ),
        series("inference_requests_total", 1, route="public_cloud", outcome="ok", service_class="batch"),
        series(
            "inference_tokens_total",
            3_000,
            route="public_cloud",
            provider="acme",
            model="acme-large",
            direction="input",
            service_class="interactive",
        ),  # fmt: skip
        series(
            "inference_tokens_total",
            2_000,
            route="public_cloud",
            provider="acme",
            model="acme-large",
            direction="input",
            service_class="batch",
        ),  # fmt: skip
        series(
            "inference_tokens_total",
            800,
            route="public_cloud",
            provider="acme",
            model="acme-large",
            direction="output",
        ),  # fmt: skip
    ]
    payload = {
        "contract_version": 1,
        "gateway": "cloud-1",
        "minutes": [
            {
                "minute": (hour + timedelta(minutes=i)).isoformat(),
                "counters": [
                    {"name": s["name"], "labels": s["labels"], "increase": s["n"]} for s in per_minute
                ],
            }
            for i in range(60)
        ],
    }
    telemetry_batch_ingest(source="gateway:9", payload=payload, now=hour + timedelta(minutes=61))
    assert services.cost_rollups_compute(bucket_start=hour, resolution="hour") == 2  # all + public_cloud
    row = CostRollup.objects.get(route="public_cloud")
    # an hour: 300 requests, 300,000 input and 48,000 output tokens
    token_cost = 300 * 0.5 + 48 * 1.5  # 222.0
    cost = token_cost + 300 * 0.0001
    assert row.figures["input_tokens"] == 300_000 and row.figures["output_tokens"] == 48_000
    assert row.figures["token_cost_usd"] == pytest.approx(token_cost)
    assert row.cost_usd == pytest.approx(cost) and row.cost_per_request_usd == pytest.approx(cost / 300)
    assert row.figures["cost_per_1k_tokens_usd"] == pytest.approx(cost / 348)
    rows = [
        CostRow(r.route, r.bucket_start, r.cost_model_version, r.requests, r.cost_usd, r.figures)
        for r in CostRollup.objects.all()
    ]
    tokens = cost_summary(rows, period_hours=1)["tokens"]
    assert tokens["token_cost_usd"] == pytest.approx(token_cost) and tokens["unpriced_tokens"] == 0
    assert tokens["tiers"]["public_cloud"]["cost_per_1k_tokens_usd"] == pytest.approx(cost / 348)
    assert tokens["tiers"]["public_cloud"]["cost_per_request_usd"] == pytest.approx(cost / 300)
    assert tokens["routes"]["public_cloud"]["input_tokens"] == 300_000
    assert set(tokens["tiers"]) == {"public_cloud"}


def test_the_report_page_shows_cost_per_1k_tokens_by_tier():
    from slo.reports.cost import CostRow, cost_summary
    from slo.reports.render import _service_context

    at = datetime(2025, 3, 1, 11, tzinfo=UTC)
    rows = [
        CostRow("all", at, 1, 300, 222.03, {"unpriced_tokens": 0}),
        CostRow(
            "public_cloud",
            at,
            1,
            300,
            222.03,
            {"input_tokens": 300_000, "output_tokens": 48_000, "token_cost_usd": 222.0},
        ),
    ]
    cost = cost_summary(rows, period_hours=1)
    context = _service_context({"sections": {}, "cost": cost, "slos": [], "alert_episodes": []})
    assert context["cost_text"]["token_tiers"] == [
        {"tier": "public_cloud", "tokens": "348,000", "token_cost": "$222.00", "per_1k_tokens": "$0.638017"}
    ]
    assert round(222.03 / 348, 6) == 0.638017  # by hand
