"""NVIDIA Triton Inference Server: `nv_inference_*` per model, labels `model` and `version`.

Availability: `nv_inference_request_success` over success plus `nv_inference_request_failure`
(which also carries `reason`); Triton has no total counter, so the total sums both through a
`__name__` regex. Its only latency histogram is `nv_inference_first_response_histogram_ms`
(milliseconds; enabled with `--metrics-config histogram_latencies=true`, for decoupled models).
"""

from __future__ import annotations

from slo.templates.base import Counter, LatencySli, RatioSli, Template

TEMPLATE = Template(
    name="triton",
    title="NVIDIA Triton Inference Server",
    project="Triton",
    reference="triton server docs/user_guide/metrics.md",
    slis=(
        RatioSli(
            key="availability",
            title="Inference requests that succeed",
            good=Counter(("nv_inference_request_success",)),
            total=Counter(("nv_inference_request_success", "nv_inference_request_failure")),
            model_label="model",
        ),
        LatencySli(
            key="ttft",
            title="Request to first response",
            histograms=("nv_inference_first_response_histogram_ms",),
            default_threshold_ms=500,
            model_label="model",
            ms_per_unit=1.0,
        ),
    ),
    notes=(
        "End-to-end and queue time are cumulative microsecond counters (nv_inference_request_duration_us, "
        "nv_inference_queue_duration_us) and summaries: they give averages and quantiles, not a share of "
        "requests under a threshold, so no exact latency SLO is built from them.",
    ),
)
