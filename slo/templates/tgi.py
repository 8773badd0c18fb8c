"""Hugging Face Text Generation Inference: `tgi_*` metrics from the Rust router.

The router's exporter does not add `_total`: the counters are `tgi_request_count` and
`tgi_request_success`. The documented request metrics carry no model label (one TGI serves one
model), so the selectors are unscoped; bind one source per TGI deployment.
"""

from __future__ import annotations

from slo.templates.base import Counter, LatencySli, RatioSli, Template

TEMPLATE = Template(
    name="tgi",
    title="Hugging Face Text Generation Inference",
    project="TGI",
    reference="text-generation-inference docs/source/reference/metrics.md",
    slis=(
        RatioSli(
            key="availability",
            title="Requests that succeed",
            good=Counter(("tgi_request_success",)),
            total=Counter(("tgi_request_count",)),
        ),
        LatencySli(
            key="e2e-latency",
            title="End-to-end request latency",
            histograms=("tgi_request_duration",),
            default_threshold_ms=10_000,
            model_label=None,
        ),
        LatencySli(
            key="inter-token-latency",
            title="Mean time per token (inter-token latency)",
            histograms=("tgi_request_mean_time_per_token_duration",),
            default_threshold_ms=100,
            model_label=None,
        ),
        LatencySli(
            key="queue-time",
            title="Time waiting in the queue",
            histograms=("tgi_request_queue_duration",),
            default_threshold_ms=1000,
            model_label=None,
        ),
    ),
    notes=("TGI exposes no time-to-first-token histogram.",),
)
