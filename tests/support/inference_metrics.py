"""Exposition history in the shape each inference server documents, written by us from the facts
(metric names, label names, bucket lists) in each project's metrics documentation; no copied file.

Every series is scraped every minute, so a minute's expected count (after the first) is its
increment; `Expected` records the increments the SLIs should sum to, per project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tests.support.prometheus import History, SeriesHistory

VLLM_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# vLLM's default time-to-first-token buckets, printed as prometheus_client prints floats
VLLM_TTFT_LE = (
    "0.001",
    "0.005",
    "0.01",
    "0.02",
    "0.04",
    "0.06",
    "0.08",
    "0.1",
    "0.25",
    "0.5",
    "0.75",
    "1.0",
    "2.5",
    "5.0",
    "7.5",
    "10.0",
    "20.0",
    "40.0",
    "80.0",
    "160.0",
    "640.0",
    "2560.0",
)
# the older inter-token name, default list
VLLM_TPOT_LE = (
    "0.01",
    "0.025",
    "0.05",
    "0.075",
    "0.1",
    "0.15",
    "0.2",
    "0.3",
    "0.4",
    "0.5",
    "0.75",
    "1.0",
    "2.5",
    "5.0",
    "7.5",
    "10.0",
    "20.0",
    "40.0",
    "80.0",
)
# a deployment's own e2e buckets (--custom-histogram-buckets), not the defaults
VLLM_E2E_LE = ("1.0", "5.0", "10.0", "30.0", "60.0")
TRITON_TTFR_LE = ("100", "500", "2000", "5000")  # milliseconds, the documented defaults
TGI_DURATION_LE = ("0.1", "0.5", "1", "5", "10", "30")
LITELLM_LATENCY_LE = ("0.005", "0.1", "0.5", "1.0", "5.0", "10.0", "30.0", "60.0")


@dataclass
class Generated:
    history: History
    # (metric, labels) per role, so the tests sum exactly what each SLI should select
    series: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)

    def increments(self, role: str) -> np.ndarray:
        wanted = self.series[role]
        chosen = [s for s in self.history.series if (s.name, s.labels) in wanted]
        assert len(chosen) == len(wanted), role
        return np.sum([s.increments for s in chosen], axis=0)


class _Writer:
    def __init__(self, start_s: int, minutes: int, seed: int) -> None:
        self.out = Generated(History(start_s=start_s, minutes=minutes))
        self.rng = np.random.default_rng(seed)
        self.minutes = minutes

    def counter(self, name: str, labels: dict[str, str], low: int, high: int, *roles: str) -> np.ndarray:
        inc = self.rng.integers(low, high, size=self.minutes)
        self._add(name, labels, inc, roles)
        return inc

    def _add(self, name: str, labels: dict[str, str], inc: np.ndarray, roles: tuple[str, ...]) -> None:
        self.out.history.add(SeriesHistory(name, labels, inc, np.ones(self.minutes, dtype=np.bool_)))
        for role in roles:
            self.out.series.setdefault(role, []).append((name, labels))

    def histogram(
        self,
        base: str,
        labels: dict[str, str],
        les: tuple[str, ...],
        good_le: str | None,
        role: str,
        low: int = 20,
        high: int = 80,
    ) -> None:
        """Per-minute observations spread over the buckets; `<role>_good` selects bucket `good_le`,
        `<role>_total` the `_count`."""
        total = self.rng.integers(low, high, size=self.minutes)
        shares = self.rng.dirichlet(np.ones(len(les) + 1), size=self.minutes)
        per_bucket = np.array([self.rng.multinomial(t, p) for t, p in zip(total, shares, strict=True)])
        cumulative = np.cumsum(per_bucket, axis=1)
        for k, le in enumerate((*les, "+Inf")):
            roles = (f"{role}_good",) if le == good_le else ()
            self._add(f"{base}_bucket", {**labels, "le": le}, cumulative[:, k], roles)
        self._add(f"{base}_count", labels, total, (f"{role}_total",))
        self._add(f"{base}_sum", labels, total * 3, ())


def vllm_history(start_s: int, minutes: int, seed: int = 11) -> Generated:
    """Two engines of the model under test, plus another model that must not be counted."""
    w = _Writer(start_s, minutes, seed)
    for model, engines, prefix in ((VLLM_MODEL, ("0", "1"), "vllm"), ("other-model", ("0",), "other")):
        for engine in engines:
            labels = {"model_name": model, "engine": engine}
            for reason, lo, hi in (("stop", 40, 90), ("length", 5, 20), ("abort", 0, 4), ("error", 0, 2)):
                roles = [f"{prefix}_avail_total"] + (
                    [f"{prefix}_avail_bad"] if reason in ("abort", "error") else []
                )
                w.counter("vllm:request_success_total", {**labels, "finished_reason": reason}, lo, hi, *roles)
            w.counter("vllm:prompt_tokens_total", labels, 1000, 5000)
            w.histogram("vllm:time_to_first_token_seconds", labels, VLLM_TTFT_LE, "0.25", f"{prefix}_ttft")
            w.histogram("vllm:e2e_request_latency_seconds", labels, VLLM_E2E_LE, "10.0", f"{prefix}_e2e")
            w.histogram("vllm:time_per_output_token_seconds", labels, VLLM_TPOT_LE, "0.1", f"{prefix}_itl")
    return w.out


def triton_history(start_s: int, minutes: int, seed: int = 12) -> Generated:
    w = _Writer(start_s, minutes, seed)
    for model, prefix in (("resnet50", "triton"), ("bert", "other")):
        labels = {"model": model, "version": "1"}
        w.counter(
            "nv_inference_request_success", labels, 50, 150, f"{prefix}_avail_good", f"{prefix}_avail_total"
        )
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
            w.counter(
                "nv_inference_request_failure", {**labels, "reason": reason}, 0, 3, f"{prefix}_avail_total"
            )
        w.counter("nv_inference_count", labels, 50, 300)
        w.counter("nv_inference_request_duration_us", labels, 10_000, 90_000)
        w.histogram(
            "nv_inference_first_response_histogram_ms", labels, TRITON_TTFR_LE, "500", f"{prefix}_ttft"
        )
    return w.out


def tgi_history(start_s: int, minutes: int, seed: int = 13) -> Generated:
    w = _Writer(start_s, minutes, seed)
    success = w.counter("tgi_request_success", {}, 30, 90, "tgi_avail_good")
    failed = w.rng.integers(0, 5, size=minutes)
    w._add("tgi_request_count", {}, success + failed, ("tgi_avail_total",))
    w.histogram("tgi_request_duration", {}, TGI_DURATION_LE, "10", "tgi_e2e")
    w.histogram("tgi_request_queue_duration", {}, TGI_DURATION_LE, "1", "tgi_queue")
    w.histogram("tgi_request_mean_time_per_token_duration", {}, TGI_DURATION_LE, "0.1", "tgi_itl")
    return w.out


def litellm_history(start_s: int, minutes: int, seed: int = 14) -> Generated:
    w = _Writer(start_s, minutes, seed)
    for model, prefix in (("gpt-4o", "litellm"), ("claude", "other")):
        key = {
            "hashed_api_key": "abc123",
            "api_key_alias": "ci",
            "team": "t1",
            "team_alias": "team-one",
            "end_user": "",
            "user": "u1",
            "requested_model": model,
        }
        for status in ("200", "429", "500"):
            w.counter(
                "litellm_proxy_total_requests_metric_total",
                {**key, "status_code": status},
                *((40, 120) if status == "200" else (0, 4)),
                f"{prefix}_avail_total",
                *([f"{prefix}_avail_good"] if status == "200" else []),
            )
        for status, cls in (("429", "RateLimitError"), ("500", "InternalServerError")):
            w.counter(
                "litellm_proxy_failed_requests_metric_total",
                {**key, "exception_status": status, "exception_class": cls},
                0,
                4,
                f"{prefix}_avail_bad",
            )
        w.histogram(
            "litellm_request_total_latency_metric",
            {**key, "model": model},
            LITELLM_LATENCY_LE,
            "10.0",
            f"{prefix}_e2e",
        )
        ttft_labels = {
            "model": model,
            "hashed_api_key": "abc123",
            "api_key_alias": "ci",
            "team": "t1",
            "team_alias": "team-one",
        }
        w.histogram(
            "litellm_llm_api_time_to_first_token_metric",
            ttft_labels,
            LITELLM_LATENCY_LE,
            "0.5",
            f"{prefix}_ttft",
        )
    return w.out


def all_histories(start_s: int, minutes: int) -> dict[str, Generated]:
    return {
        "vllm": vllm_history(start_s, minutes),
        "triton": triton_history(start_s, minutes),
        "tgi": tgi_history(start_s, minutes),
        "litellm": litellm_history(start_s, minutes),
    }


def merged(histories: dict[str, Generated]) -> History:
    first = next(iter(histories.values())).history
    out = History(start_s=first.start_s, minutes=first.minutes)
    for generated in histories.values():
        for series in generated.history.series:
            out.add(series)
    return out
