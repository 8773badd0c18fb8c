"""vLLM (OpenAI-compatible server, V1 engine): prefix `vllm:`, labels `model_name` and `engine`.

Counters are exposed with `_total` (prometheus_client adds it). vLLM has no failure counter: a
request that ends is counted in `vllm:request_success_total` by `finished_reason` (`stop`, `length`,
`abort`; newer builds add e.g. `error`), so availability counts `abort` and `error` as bad.
Inter-token latency was `vllm:time_per_output_token_seconds` before it became
`vllm:inter_token_latency_seconds`; both are candidates, the newer first.
"""

from __future__ import annotations

from slo.templates.base import Counter, LatencySli, RatioSli, Template

TEMPLATE = Template(
    name="vllm",
    title="vLLM OpenAI-compatible server",
    project="vLLM",
    reference="vllm docs/usage/metrics.md and vllm/v1/metrics/loggers.py",
    slis=(
        RatioSli(
            key="availability",
            title="Requests that finish without abort or error",
            bad=Counter(("vllm:request_success_total",), (("finished_reason", "~abort|error"),)),
            total=Counter(("vllm:request_success_total",)),
            model_label="model_name",
        ),
        LatencySli(
            key="ttft",
            title="Time to first token",
            histograms=("vllm:time_to_first_token_seconds",),
            default_threshold_ms=500,
            model_label="model_name",
        ),
        LatencySli(
            key="e2e-latency",
            title="End-to-end request latency",
            histograms=("vllm:e2e_request_latency_seconds",),
            default_threshold_ms=10_000,
            model_label="model_name",
        ),
        LatencySli(
            key="inter-token-latency",
            title="Inter-token latency",
            histograms=("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
            default_threshold_ms=100,
            model_label="model_name",
        ),
        LatencySli(
            key="queue-time",
            title="Time waiting in the queue",
            histograms=("vllm:request_queue_time_seconds",),
            default_threshold_ms=1000,
            model_label="model_name",
        ),
    ),
)
