"""The LiteLLM callback's tokens and token timings (gateway.litellm_callback), fed the kwargs and
response objects LiteLLM passes to a CustomLogger, and its batch read back by our own push parser."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.litellm_callback import SloTelemetryCallback
from slo import contract as c
from slo.telemetry.batch import parse_push_batch
from tests.gateway.litellm_support import SERVICE

T0 = datetime(2026, 12, 6, 7, 30, 0, 250_000)


class Clocked(SloTelemetryCallback):
    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at

    def now(self) -> float:
        return self.at

    def _cache_on(self) -> bool:
        return False


def call_details(route: str, model: str, provider: str | None, **extra: Any) -> dict[str, Any]:
    """What LiteLLM passes as `kwargs` (its model_call_details) for a routed deployment."""
    details: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "optional_params": {},
        "litellm_params": {
            "model": f"{provider}/{model}" if provider else model,
            "custom_llm_provider": provider,
            "metadata": {"model_group": SERVICE},
            "model_info": {
                "id": f"{route}-1",
                "slo_service": SERVICE,
                "slo_route": route,
                "slo_tier": "private_cloud",
                "slo_revision": 4,
            },
        },
        "start_time": T0,
        "stream": False,
        "call_type": "acompletion",
        "completion_start_time": None,
        "cache_hit": None,
        **extra,
    }
    if provider:
        details["custom_llm_provider"] = provider
    return details


def model_response(prompt: int, completion: int) -> SimpleNamespace:
    """A ModelResponse as the callback reads it: `usage.prompt_tokens` / `usage.completion_tokens`."""
    usage = SimpleNamespace(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
    return SimpleNamespace(id="chatcmpl-1", object="chat.completion", model="m", usage=usage, choices=[])


def counters(batch: dict[str, Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    (minute,) = batch["minutes"]
    return {(i["name"], tuple(sorted(i["labels"].items()))): i["increase"] for i in minute["counters"]}


def key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"service": SERVICE, "tier": "private_cloud", **labels}.items()))


def tokens(route: str, provider: str, model: str, direction: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return key(c.TOKENS_TOTAL, route=route, provider=provider, model=model, direction=direction)


@pytest.fixture
def callback(monkeypatch: pytest.MonkeyPatch) -> Clocked:
    monkeypatch.delenv("SLO_CONTROL_PLANE_URL", raising=False)  # no pusher thread in these tests
    minute = (int(time.time() // 60) - 3) * 60
    return Clocked(minute + 5.0)


def test_answers_push_their_usage_tokens_per_route_provider_and_model(callback: Clocked) -> None:
    dc = ("private_cloud", "llama-3-70b", "openai")
    # two answers of the private-cloud deployment, one of the public one, through LiteLLM's hook
    for (route, model, provider), (prompt, completion) in (
        (dc, (812, 143)),
        (dc, (188, 57)),
        (("public_cloud", "gpt-4o-mini", "openai"), (40, 9)),
    ):
        hook = callback.async_log_success_event(
            call_details(route, model, provider),
            model_response(prompt, completion),
            T0,
            T0 + timedelta(seconds=1.2),
        )
        # in a thread of its own: an earlier test (Playwright's sync API) may leave a loop running here
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(asyncio.run, hook).result()
    # a model string carrying its provider and no custom_llm_provider; usage as a dict
    callback.on_success(
        call_details("local", "vllm/llama-3-8b", None),
        T0,
        T0 + timedelta(seconds=0.3),
        {"usage": {"prompt_tokens": 77, "completion_tokens": 0}},
    )
    # a cache hit bills no tokens, whatever usage the cached answer carries
    callback.on_success(
        call_details("private_cloud", "llama-3-70b", "openai", cache_hit=True),
        T0,
        T0 + timedelta(seconds=0.01),
        model_response(999, 999),
    )

    callback.at += 60
    minutes, batch = callback.batch()
    got = counters(batch)
    token_series = {k: v for k, v in got.items() if k[0] == c.TOKENS_TOTAL}
    assert token_series == {
        tokens("private_cloud", "openai", "llama-3-70b", "input"): 812 + 188,
        tokens("private_cloud", "openai", "llama-3-70b", "output"): 143 + 57,
        tokens("public_cloud", "openai", "gpt-4o-mini", "input"): 40,
        tokens("public_cloud", "openai", "gpt-4o-mini", "output"): 9,
        tokens("local", "vllm", "llama-3-8b", "input"): 77,
    }
    assert got[key(c.REQUESTS_TOTAL, route="private_cloud", outcome="ok")] == 2
    assert got[key(c.REQUESTS_TOTAL, route="cache", outcome="ok")] == 1
    assert not any(k[0].startswith(c.TIME_TO_FIRST_TOKEN) for k in got)  # nothing was streamed

    parsed, problems = parse_push_batch(batch, known_services={SERVICE}, now_s=time.time())
    assert problems == [] and parsed is not None
    stored = {(ref.name, ref.labels.get("direction")): 0.0 for _, ref, _ in parsed.points}
    for _, ref, value in parsed.points:
        if ref.name == c.TOKENS_TOTAL:
            stored[(ref.name, ref.labels["direction"])] += value
    assert stored[(c.TOKENS_TOTAL, "input")] == 812 + 188 + 40 + 77
    assert stored[(c.TOKENS_TOTAL, "output")] == 143 + 57 + 9
    assert minutes == [int(callback.at // 60) * 60 - 60]


def test_a_streamed_answer_records_its_time_to_first_token_and_per_output_token(callback: Clocked) -> None:
    details = call_details(
        "public_cloud",
        "gpt-4o-mini",
        "openai",
        stream=True,
        completion_start_time=T0 + timedelta(seconds=0.4),
    )
    callback.on_success(details, T0, T0 + timedelta(seconds=3.4), model_response(300, 51))
    # LiteLLM sets completion_start_time = end_time on an answer that was not streamed: no TTFT
    callback.on_success(
        call_details(
            "public_cloud", "gpt-4o-mini", "openai", completion_start_time=T0 + timedelta(seconds=2)
        ),
        T0,
        T0 + timedelta(seconds=2),
        model_response(10, 5),
    )
    callback.at += 60
    _, batch = callback.batch()
    got = counters(batch)
    ttft = {"route": "public_cloud", "outcome": "ok"}
    assert got[key(f"{c.TIME_TO_FIRST_TOKEN}_count", **ttft)] == 1
    assert got[key(f"{c.TIME_TO_FIRST_TOKEN}_sum", **ttft)] == pytest.approx(0.4)
    assert (
        got.get(key(f"{c.TIME_TO_FIRST_TOKEN}_bucket", **ttft, le="0.3"), 0) == 0
    )  # buckets are pushed only where they grew
    assert got[key(f"{c.TIME_TO_FIRST_TOKEN}_bucket", **ttft, le="0.5")] == 1
    # (3.4 s - 0.4 s) / (51 - 1) output tokens = 0.06 s: above the .05 boundary, within .075
    tpot = {"route": "public_cloud"}
    assert got[key(f"{c.TIME_PER_OUTPUT_TOKEN}_count", **tpot)] == 1
    assert got[key(f"{c.TIME_PER_OUTPUT_TOKEN}_sum", **tpot)] == pytest.approx(0.06)
    assert got.get(key(f"{c.TIME_PER_OUTPUT_TOKEN}_bucket", **tpot, le="0.05"), 0) == 0
    assert got[key(f"{c.TIME_PER_OUTPUT_TOKEN}_bucket", **tpot, le="0.075")] == 1
    assert got[tokens("public_cloud", "openai", "gpt-4o-mini", "output")] == 51 + 5
    parsed, problems = parse_push_batch(batch, known_services={SERVICE}, now_s=time.time())
    assert problems == [] and parsed is not None


def test_a_model_name_that_is_not_a_valid_label_value_is_cleaned_not_refused(callback: Clocked) -> None:
    callback.on_success(
        call_details("private_cloud", "ft:llama=3,70b" + "x" * 200, "hosted_vllm"),
        T0,
        T0 + timedelta(seconds=1),
        model_response(5, 2),
    )
    callback.at += 60
    _, batch = callback.batch()
    models = {i["labels"]["model"] for i in batch["minutes"][0]["counters"] if i["name"] == c.TOKENS_TOTAL}
    assert models == {("ft:llama_3_70b" + "x" * 200)[:128]}
    parsed, problems = parse_push_batch(batch, known_services={SERVICE}, now_s=time.time())
    assert problems == [] and parsed is not None
