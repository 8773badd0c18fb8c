"""LiteLLM proxy: `litellm_*` metrics from prometheus_client (counters exposed with `_total`, as
the project's FAQ says to consume them). Request counters carry `requested_model`; the
time-to-first-token histogram carries `model` and is only emitted for streaming requests.

Availability counts the 2xx `status_code` series of `litellm_proxy_total_requests_metric` rather
than `litellm_proxy_failed_requests_metric`: prometheus_client creates a labelled series at its
first increment, so a proxy that never failed has no failure series, and a bad query matching no
series would leave the SLO without data instead of at 100%.
"""

from __future__ import annotations

from slo.templates.base import Counter, LatencySli, RatioSli, Template

TEMPLATE = Template(
    name="litellm",
    title="LiteLLM proxy",
    project="LiteLLM",
    reference="litellm docs/my-website/docs/proxy/prometheus.md",
    slis=(
        RatioSli(
            key="availability",
            title="Proxy requests answered with a 2xx status",
            good=Counter(("litellm_proxy_total_requests_metric_total",), (("status_code", "~2.."),)),
            total=Counter(("litellm_proxy_total_requests_metric_total",)),
            model_label="requested_model",
        ),
        LatencySli(
            key="e2e-latency",
            title="Total request latency through the proxy",
            histograms=("litellm_request_total_latency_metric",),
            default_threshold_ms=10_000,
            model_label="requested_model",
        ),
        LatencySli(
            key="ttft",
            title="Time to first token of the LLM API call (streaming)",
            histograms=("litellm_llm_api_time_to_first_token_metric",),
            default_threshold_ms=500,
            model_label="model",
        ),
    ),
    notes=("LiteLLM exposes no queue-time histogram.",),
)
