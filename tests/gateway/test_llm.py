"""The reference gateway with request classes and an LLM: what it pushes feeds class-scoped and
time-to-first-token SLOs, with the counts its own answers imply."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from gateway.app import Gateway
from gateway.config import ConfigError, load_config
from gateway.llm import FIRST_TOKEN_SHARE
from tests.gateway.support import SERVICE

START = 1_700_000_040  # a minute boundary
SHARES = {"interactive": 0.7, "batch": 0.3}


def _gateway(tmp_path: Path, **extra: Any) -> Gateway:
    # an LLM on the edge box: answers take hundreds of milliseconds
    toml = tmp_path / "gateway.toml"
    toml.write_text("[routes.local]\np50_ms = 250\np95_ms = 600\n")
    config = load_config(
        str(toml),
        {
            "name": "llm-gw",
            "service": SERVICE,
            "state_dir": str(tmp_path),
            "seed": 5,
            "classes": SHARES,
            "llm_provider": "acme",
            "llm_model": "acme-large",
            **extra,
        },
    )
    return Gateway(config)


def test_bad_class_shares_or_half_an_llm_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="traffic.classes.premium"):
        _gateway(tmp_path, classes={"premium": 1.0})
    with pytest.raises(ConfigError, match="add up to 1"):
        _gateway(tmp_path, classes={"interactive": 0.5})
    with pytest.raises(ConfigError, match="both provider and model"):
        _gateway(tmp_path, llm_model="")


@pytest.mark.django_db
def test_its_pushes_feed_class_and_ttft_slos_with_the_counts_of_its_answers(tmp_path: Path) -> None:
    from slo.services import service_create, slo_create
    from slo.telemetry.ingest import telemetry_batch_ingest
    from slo.telemetry.selectors import sli_minutes

    service_create(
        actor=None,
        data={"name": SERVICE, "service_class": "interactive", "tiers": ["edge", "private_cloud"]},
    )
    base = {"service": SERVICE, "objective": 99.0, "window": {"days": 28}, "tier": "edge"}
    slos = {
        name: slo_create(actor=None, data={**base, "name": name, **doc})
        for name, doc in {
            "ttft": {"sli": {"kind": "ttft", "threshold_ms": 100}},
            "avail-interactive": {"sli": {"kind": "availability"}, "service_class": "interactive"},
            "avail-batch": {"sli": {"kind": "availability"}, "service_class": "batch"},
        }.items()
    }
    gateway = _gateway(tmp_path)
    outcomes = []
    for second in range(0, 120, 5):
        outcomes += gateway.tick(now=START + second, requests_count=50)
    minutes, batch = gateway.telemetry_batch(now=START + 125)
    assert len(minutes) == 2
    now = datetime.fromtimestamp(START + 125, tz=UTC)
    telemetry_batch_ingest(source="gateway:1", payload=batch, now=now)
    start, end = datetime.fromtimestamp(START, tz=UTC), datetime.fromtimestamp(START + 120, tz=UTC)

    def totals(name: str) -> tuple[int, int]:
        data = sli_minutes([slos[name].pk], start, end)
        assert data.present.all()
        return int(data.good.sum()), int(data.valid.sum())

    # TTFT: every ok or timed-out answer is valid; an ok answer is good when its first token came
    # within 100 ms (generated answers: FIRST_TOKEN_SHARE of the duration; cached ones: at once)
    answered = [o for o in outcomes if o.outcome in ("ok", "timeout")]
    good = [
        o
        for o in answered
        if o.outcome == "ok"
        and (o.elapsed_ms if o.route == "cache" else o.elapsed_ms * FIRST_TOKEN_SHARE) / 1000 <= 0.1
    ]
    assert totals("ttft") == (len(good), len(answered))
    assert 0 < len(good) < len(answered)
    # the classes split the availability SLI: together they are every valid request
    valid = [o for o in outcomes if o.outcome in ("ok", "error", "timeout")]
    ok = [o for o in valid if o.outcome == "ok"]
    interactive, batch_class = totals("avail-interactive"), totals("avail-batch")
    assert interactive[0] + batch_class[0] == len(ok)
    assert interactive[1] + batch_class[1] == len(valid)
    # drawn by the configured shares (1,200 requests: 0.7 within a few points)
    assert 0.64 < interactive[1] / len(valid) < 0.76
    # and the scraped side says the same
    exposed = generate_latest(gateway.metrics.registry).decode()
    assert 'inference_time_to_first_token_seconds_bucket{le="0.1",outcome="ok",route=' in exposed
    assert 'service_class="batch"' in exposed
    assert 'inference_tokens_total{direction="output",model="acme-large",provider="acme"' in exposed
