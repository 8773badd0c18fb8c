"""Inference-server templates: each project's documented exposition, backfilled into a REAL
Prometheus, a service created from the template bound to it, then pulled exactly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from controlplane.models import AuditEvent
from slo.counters import from_epoch_minute
from slo.models import Service, Slo
from slo.models.telemetry import TelemetrySource
from slo.telemetry.discovery import metrics_found
from slo.telemetry.pull import telemetry_source_pull
from slo.telemetry.selectors import sli_minutes
from slo.telemetry.sources import telemetry_source_create
from slo.templates import TEMPLATES
from slo.templates.builder import TemplateProblems, build_plan, missing_counter_warnings, nearest_boundary
from tests.support import prometheus as support
from tests.support.inference_metrics import VLLM_MODEL, Generated, all_histories, merged

MINUTES = 30


@pytest.fixture(scope="module")
def loaded(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[support.PrometheusServer, dict[str, Generated]]]:
    support.require_prometheus()
    workdir: Path = tmp_path_factory.mktemp("inference-prometheus")
    histories = all_histories(support.history_start_s(), MINUTES)
    server = support.start_with_history(workdir, merged(histories))
    try:
        yield server, histories
    finally:
        server.stop()


@pytest.fixture
def source(db: Any, loaded: Any) -> TelemetrySource:
    server, _ = loaded
    return telemetry_source_create(
        actor=None,
        data={
            "name": "inference-prom",
            "url": server.url,
            "tier": "edge",
            "scrape_lag_s": 0,
            "backfill_minutes": MINUTES,
        },
    )


def pull_all(source: TelemetrySource, generated: Generated) -> None:
    end = from_epoch_minute(generated.history.start_s // 60 + MINUTES)
    result = telemetry_source_pull(source_id=source.pk, now=end)
    assert result.ok and not result.error, result.error


def assert_exact(slo: Slo, generated: Generated, good: np.ndarray, total: np.ndarray) -> None:
    """Every minute after the first is present, with exactly the generated counts."""
    start = from_epoch_minute(generated.history.start_s // 60)
    data = sli_minutes([slo.pk], start, start + timedelta(minutes=MINUTES))
    assert not data.present[0][0] and data.present[0][1:].all()
    assert data.good[0][1:].tolist() == good[1:].tolist()
    assert data.valid[0][1:].tolist() == total[1:].tolist()
    assert total[1:].sum() > good[1:].sum() > 0  # the fixture has bad events: the SLI can tell


def create(template: str, service: str, *params: str) -> str:
    out = StringIO()
    call_command(
        "create_service_from_template",
        template,
        "--source",
        "inference-prom",
        "--service",
        service,
        *[f"--param={p}" for p in params],
        stdout=out,
    )
    return out.getvalue()


@pytest.mark.prometheus
def test_vllm_one_command_gives_ttft_and_availability_matching_the_fixture(
    source: TelemetrySource, loaded: Any
) -> None:
    _, histories = loaded
    vllm = histories["vllm"]
    out = create("vllm", "chat", f"model={VLLM_MODEL}", "ttft_threshold_ms=300")
    # 300 ms is no bucket boundary: the nearest one on the source (250 ms) is used and reported
    assert "chat-ttft: threshold 250 ms = le 0.25 of vllm:time_to_first_token_seconds (asked 300 ms" in out
    # the deployment's own e2e buckets and the older inter-token name are read from the source
    assert "chat-e2e-latency: threshold 10000 ms = le 10 of vllm:e2e_request_latency_seconds\n" in out
    assert "chat-inter-token-latency: threshold 100 ms = le 0.1 of vllm:time_per_output_token_seconds" in out
    assert "skipped chat-queue-time: no buckets of vllm:request_queue_time_seconds_bucket" in out
    pull_all(source, vllm)
    slos = {s.name: s for s in Slo.objects.filter(service__name="chat")}
    assert sorted(slos) == ["chat-availability", "chat-e2e-latency", "chat-inter-token-latency", "chat-ttft"]
    assert all(s.sli_kind == "custom" and s.tier == "edge" for s in slos.values())
    total = vllm.increments("vllm_avail_total")
    assert_exact(slos["chat-availability"], vllm, total - vllm.increments("vllm_avail_bad"), total)
    for key, role in (
        ("ttft", "vllm_ttft"),
        ("e2e-latency", "vllm_e2e"),
        ("inter-token-latency", "vllm_itl"),
    ):
        assert_exact(
            slos[f"chat-{key}"], vllm, vllm.increments(f"{role}_good"), vllm.increments(f"{role}_total")
        )


@pytest.mark.prometheus
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("triton", {"availability": ("triton_avail", "good"), "ttft": ("triton_ttft", "good")}),
        (
            "tgi",
            {
                "availability": ("tgi_avail", "good"),
                "e2e-latency": ("tgi_e2e", "good"),
                "queue-time": ("tgi_queue", "good"),
                "inter-token-latency": ("tgi_itl", "good"),
            },
        ),
        (
            "litellm",
            {
                "availability": ("litellm_avail", "good"),
                "e2e-latency": ("litellm_e2e", "good"),
                "ttft": ("litellm_ttft", "good"),
            },
        ),
    ],
)
def test_each_template_pulls_exactly(
    source: TelemetrySource, loaded: Any, template: str, expected: dict[str, tuple[str, str]]
) -> None:
    _, histories = loaded
    generated = histories[template]
    model = {"triton": ["model=resnet50"], "litellm": ["model=gpt-4o"], "tgi": []}[template]
    create(template, "svc", *model)
    pull_all(source, generated)
    slos = {s.name.removeprefix("svc-"): s for s in Slo.objects.filter(service__name="svc")}
    assert sorted(slos) == sorted(expected)
    for key, (role, style) in expected.items():
        total = generated.increments(f"{role}_total")
        part = generated.increments(f"{role}_{style}")
        assert_exact(slos[key], generated, part if style == "good" else total - part, total)


@pytest.mark.prometheus
def test_the_api_creates_audited_in_one_go_and_refuses_bad_input_storing_nothing(
    source: TelemetrySource, api_for: Any
) -> None:
    listing = api_for("viewer").get("/api/v1/service-templates/")
    assert listing.status_code == 200
    assert {t["name"] for t in listing.json()["results"]} >= {"vllm", "triton", "tgi", "litellm"}
    operator = api_for("operator")
    url = "/api/v1/services/from-template/"
    bad = operator.post(
        url,
        {
            "template": "vllm",
            "source": "inference-prom",
            "service_name": "chat",
            "params": {"ttft_threshold_ms": "fast", "colour": "red"},
        },
        format="json",
    )
    assert bad.status_code == 400
    paths = {p["path"] for p in bad.json()["errors"]}
    assert paths == {"params.ttft_threshold_ms", "params.colour"}
    missing = operator.post(
        url, {"template": "vllm", "source": "nope", "service_name": "chat"}, format="json"
    )
    assert missing.status_code == 400 and missing.json()["errors"][0]["path"] == "source"
    # a threshold asked for on a histogram the source lacks: refused, nothing half-stored
    lacking = operator.post(
        url,
        {
            "template": "vllm",
            "source": "inference-prom",
            "service_name": "chat",
            "params": {"queue_time_threshold_ms": 500},
        },
        format="json",
    )
    assert (
        lacking.status_code == 400 and lacking.json()["errors"][0]["path"] == "params.queue_time_threshold_ms"
    )
    assert not Service.objects.filter(name="chat").exists() and not Slo.objects.exists()
    ok = operator.post(
        url,
        {
            "template": "vllm",
            "source": "inference-prom",
            "service_name": "chat",
            "params": {"model": VLLM_MODEL},
        },
        format="json",
    )
    assert ok.status_code == 201, ok.content
    body = ok.json()
    assert body["warnings"] == []  # every counter the availability SLO reads has series on the source
    names = ["vllm:request_success_total", "tgi_request_count", "vllm:no_such_total"]
    assert metrics_found(source, names) == {"vllm:request_success_total", "tgi_request_count"}
    ttft = next(t for t in body["thresholds"] if t["slo"] == "chat-ttft")
    assert ttft["exact"] and ttft["threshold_ms"] == 500 and 250 in ttft["boundaries_ms"]
    assert Slo.objects.filter(service__name="chat").count() == 4
    audited = AuditEvent.objects.filter(note__startswith="from template vllm").count()
    assert audited == 4  # one per SLO (the service's own create event has no note)
    assert AuditEvent.objects.filter(object_type__icontains="service", action="create").exists()
    again = operator.post(
        url, {"template": "vllm", "source": "inference-prom", "service_name": "chat"}, format="json"
    )
    assert again.status_code == 400 and again.json()["errors"][0]["path"] == "name"


@pytest.mark.prometheus
def test_a_source_with_a_service_list_is_extended_to_serve_the_new_service(source: TelemetrySource) -> None:
    TelemetrySource.objects.filter(pk=source.pk).update(services=["something-else"])
    out = create("tgi", "tgi-chat")
    assert "source inference-prom now also serves tgi-chat" in out
    assert TelemetrySource.objects.get(pk=source.pk).services == ["something-else", "tgi-chat"]
    with pytest.raises(CommandError, match="params.nope: unknown parameter"):
        create("tgi", "tgi-two", "nope=1")


def test_the_builder_picks_the_nearest_boundary_lower_on_a_tie() -> None:
    assert nearest_boundary(0.3, [0.1, 0.25, 0.5]) == 0.25
    assert nearest_boundary(0.375, [0.25, 0.5]) == 0.25
    assert nearest_boundary(9, [1.0, 5.0, 10.0]) == 10.0
    plan = build_plan(
        TEMPLATES["triton"],
        service_name="t",
        tier="edge",
        params={"ttft_threshold_ms": 400},
        boundaries={"nv_inference_first_response_histogram_ms": [100.0, 500.0, 2000.0]},
    )
    ttft = plan.thresholds[0]
    with pytest.raises(TemplateProblems, match="service_name: at most 43 characters"):
        build_plan(TEMPLATES["vllm"], service_name="s" * 44, tier="edge", params={}, boundaries={})
    assert (ttft["threshold_ms"], ttft["le"], ttft["exact"]) == (500.0, "500", False)


@pytest.mark.django_db
def test_a_source_that_does_not_answer_gives_502_and_stores_nothing(api_for: Any) -> None:
    telemetry_source_create(
        actor=None,
        data={"name": "down-prom", "url": f"http://127.0.0.1:{support.free_port()}", "tier": "edge"},
    )
    response = api_for("operator").post(
        "/api/v1/services/from-template/",
        {"template": "tgi", "source": "down-prom", "service_name": "tgi-chat"},
        format="json",
    )
    assert response.status_code == 502 and "down-prom did not answer" in response.json()["detail"]
    assert not Service.objects.exists() and not Slo.objects.exists()


def test_counters_without_series_are_warned_about() -> None:
    assert missing_counter_warnings(TEMPLATES["tgi"], "t", {"tgi_request_success", "tgi_request_count"}) == []
    assert missing_counter_warnings(TEMPLATES["tgi"], "t", {"tgi_request_count"}) == [
        {
            "slo": "t-availability",
            "message": "no series of tgi_request_success on the source yet: no data until they appear",
        }
    ]
    # Triton's total sums success and failure: one of them is enough
    found = {"nv_inference_request_success"}
    assert missing_counter_warnings(TEMPLATES["triton"], "t", found) == []
