"""Sections fed by other data: releases (routing's hook), consumers by gateway and region, cost
per 1,000 and per hit from cost rollups, providers against their SLA; and the command."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from slo.budget.cost import Usage
from slo.budget.services import cost_model_create, cost_rollup_store
from slo.models.reports import Report
from slo.models.telemetry import SeriesMinute
from slo.reports.services import report_generate

from .conftest import NOW, TZ, WEEK_END, WEEK_START

pytestmark = pytest.mark.django_db


def the_report():
    return report_generate(
        actor="test", now=NOW, data={"service": "shelf-vision", "period": "week", "time_zone": TZ}
    )


@pytest.fixture
def gateways(service):
    from routing.models.fleet import Gateway

    return [
        Gateway.objects.create(
            name=f"store-{i}",
            service=service,
            tier="edge",
            region=region,
            signing_secret_encrypted="x",
            token_hash=f"{i:064d}",
            token_hint="h",
        )
        for i, region in ((1, "eu-west"), (2, "eu-central"))
    ]


def test_releases_come_from_routing_as_of_the_period_end(service, users, make_slo, backdate_versions):
    from routing.models.releases import GateResult, Release, ReleaseRollback, ReleaseTransition

    make_slo()
    backdate_versions()
    release = Release.objects.create(
        service=service,
        title="new edge policy",
        author_name="otto",
        submitted_at=WEEK_START + timedelta(days=1),
        state="rolled_back",
        finished_at=WEEK_END + timedelta(days=1),
    )
    for outcome, at in (("pass", 1), ("fail", 2)):
        GateResult.objects.create(
            release=release,
            gate="burn_rate",
            stage="canary:0",
            outcome=outcome,
            at=WEEK_START + timedelta(days=1, hours=at),
        )
    ReleaseTransition.objects.create(
        release=release,
        from_state="approved",
        to_state="rolling_out",
        event="start",
        actor_name="otto",
        at=WEEK_START + timedelta(days=1),
    )
    ReleaseRollback.objects.create(
        release=release,
        trigger="canary",
        actor_name="system",
        reason="burn 20x",
        at=WEEK_START + timedelta(days=1, hours=2),
    )
    # after the period: must not show
    ReleaseTransition.objects.create(
        release=release,
        from_state="rolling_out",
        to_state="rolled_back",
        event="rollback",
        actor_name="system",
        at=WEEK_END + timedelta(days=1),
    )
    Release.objects.create(service=service, title="next week", author_name="otto", submitted_at=WEEK_END)
    section = the_report().numbers["services"][0]["sections"]["releases"]
    assert section["available"] is True
    [item] = section["data"]
    assert item["state"] == "rolling_out" and item["finished_at"] is None
    assert item["gates"] == {"fail": 1, "pass": 1} and item["failed_gates"][0]["gate"] == "burn_rate"
    assert [r["trigger"] for r in item["rollbacks"]] == ["canary"]


def test_a_missing_provider_says_unavailable(service, make_slo, backdate_versions, monkeypatch):
    from slo.reports import sections

    monkeypatch.setattr(sections, "_sections", {})
    make_slo()
    backdate_versions()
    section = the_report().numbers["services"][0]["sections"]["releases"]
    assert section["available"] is False and "no provider" in section["reason"]


def put_series(gateway, name, labels, value, minute_offset=60, tier="edge"):
    SeriesMinute.objects.create(
        minute=int(WEEK_START.timestamp() // 60) + minute_offset,
        source=f"gateway:{gateway.pk}",
        name=name,
        service="shelf-vision",
        tier=tier,
        labels=labels,
        value=value,
    )


def test_top_consumers_name_gateways_and_regions(gateways, make_slo, backdate_versions):
    slo = make_slo(tier="edge")
    backdate_versions()
    put_series(gateways[0], "inference_requests_total", "outcome=error,route=local", 40)
    put_series(gateways[0], "inference_requests_total", "outcome=ok,route=local", 960)
    put_series(gateways[1], "inference_requests_total", "outcome=timeout,route=cache", 10)
    put_series(gateways[1], "inference_requests_total", "outcome=ok,route=cache", 990)
    put_series(
        gateways[1], "inference_requests_total", "outcome=error,route=cache", 99, minute_offset=-5
    )  # before the week
    numbers = the_report().numbers
    consumers = next(s for s in numbers["services"][0]["slos"] if s["id"] == slo.pk)["consumers"]
    assert [(c["key"], c["bad_events"]) for c in consumers["gateway"]] == [("store-1", 40), ("store-2", 10)]
    assert [c["key"] for c in consumers["region"]] == ["eu-west", "eu-central"]
    assert consumers["route"][0]["share_of_bad"] == pytest.approx(0.8)
    assert numbers["services"][0]["telemetry_coverage"]["series_minutes"] == 1


def test_cost_and_sla_come_from_rollups_and_the_cost_model(
    users, service, gateways, make_slo, backdate_versions
):
    make_slo()
    backdate_versions()
    model = cost_model_create(
        actor=users["admin"],
        data={
            "effective_from": (WEEK_START - timedelta(days=30)).isoformat(),
            "prices": {
                "compute_usd_per_s": {"public_cloud": {"gpu": 0.002}},
                "request_fee_usd": {"public_cloud": 0.0001},
                "cache_usd_per_lookup": 0.00001,
                "sla": {"public_cloud": {"p95_ms": 200, "availability_percent": 99.9}},
            },
        },
    )
    for hour in range(3):
        usage = Usage(
            hours=1,
            requests={"local": 900, "cache": 100, "public_cloud": 100},
            compute_seconds={("public_cloud", "gpu"): 50},
            cache_hits=100,
            cache_misses=900,
        )
        cost_rollup_store(
            service=service,
            resolution="hour",
            bucket_start=WEEK_START + timedelta(hours=hour),
            usage=usage,
            model=model,
        )
    put_series(
        gateways[0], "inference_requests_total", "outcome=ok,route=public_cloud", 999, tier="public_cloud"
    )
    put_series(
        gateways[0], "inference_requests_total", "outcome=error,route=public_cloud", 1, tier="public_cloud"
    )
    for le, count in (("0.1", 900), ("0.25", 995), ("+Inf", 999)):
        put_series(
            gateways[0],
            "inference_request_duration_seconds_bucket",
            f"le={le},outcome=ok,route=public_cloud",
            count,
            tier="public_cloud",
        )
    service_numbers = the_report().numbers["services"][0]
    cost = service_numbers["cost"]
    # per hour: public 50 s x 0.002 + 100 x 0.0001 = 0.11; cache 1000 lookups x 0.00001 = 0.01
    assert cost["hours_covered"] == 3 and cost["cost_usd"] == pytest.approx(3 * 0.12)
    assert cost["tiers"]["public_cloud"]["cost_per_1000_usd"] == pytest.approx(1.1)
    assert cost["cost_per_cache_hit_usd"] == pytest.approx(0.0001)
    assert cost["cache_hits"] == pytest.approx(300)
    [check] = [c for c in service_numbers["sla"] if c["tier"] == "public_cloud"]
    assert check["measured_p95_ms"] == 250 and check["measured_availability_percent"] == pytest.approx(99.9)
    assert check["met"] is False and check["breaches"] == ["p95 250 ms > promised 200 ms"]
    assert service_numbers["sla_cost_model_version"] == model.version


def test_the_command_generates_and_emails(users, make_slo, backdate_versions, locmem_email, capsys):
    make_slo()
    backdate_versions()
    call_command(
        "generate_report",
        "--service",
        "shelf-vision",
        "--period",
        "week",
        "--start",
        "2026-11-16",
        "--tz",
        TZ,
        "--email",
        "a@example.test",
    )
    out = capsys.readouterr().out
    report = Report.objects.get()
    assert f"report {report.pk}:" in out and "2026-W47" in out and "sent" in out
    assert report.trigger == "command" and report.period_start == WEEK_START
    assert [m.to for m in locmem_email.outbox] == [["a@example.test"]]


def test_the_command_prints_problems(service):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="start: a week starts on a Monday"):
        call_command(
            "generate_report", "--service", "shelf-vision", "--period", "week", "--start", "2026-11-17"
        )


def test_the_demo_seeds_a_schedule_and_a_report_once(service, make_slo, capsys):
    import sys

    from slo.models.reports import ReportSchedule
    from slo.reports.demo import seed_demo

    make_slo()
    seed_demo(days=21, stdout=sys.stdout)
    seed_demo(days=21, stdout=sys.stdout)
    assert ReportSchedule.objects.get().periodic_task.enabled
    assert Report.objects.filter(trigger="demo").count() == 1
