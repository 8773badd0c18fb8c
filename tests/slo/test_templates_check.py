"""The template-vs-documentation check fails on a name the documentation does not have."""

from __future__ import annotations

from pathlib import Path

from slo.templates.check import check


def write_docs(root: Path, tgi_text: str) -> None:
    # minimal documentation written here: every name the other templates read, TGI's as given
    (root / "vllm").mkdir()
    (root / "vllm-FACTS.md").write_text(
        "vllm:request_success_total finished_reason model_name vllm:time_to_first_token_seconds "
        "vllm:e2e_request_latency_seconds vllm:inter_token_latency_seconds "
        "vllm:time_per_output_token_seconds vllm:request_queue_time_seconds"
    )
    for name, text in (
        (
            "triton",
            "nv_inference_request_success nv_inference_request_failure "
            "nv_inference_first_response_histogram_ms model",
        ),
        (
            "litellm",
            "litellm_proxy_failed_requests_metric litellm_proxy_total_requests_metric "
            "litellm_request_total_latency_metric litellm_llm_api_time_to_first_token_metric "
            "requested_model status_code model",
        ),
        ("tgi", tgi_text),
    ):
        (root / name).mkdir()
        (root / name / "metrics.md").write_text(text)


def test_documented_names_pass_and_a_missing_or_partial_name_fails(tmp_path: Path) -> None:
    complete = (
        "tgi_request_success tgi_request_count tgi_request_duration tgi_request_queue_duration "
        "tgi_request_mean_time_per_token_duration"
    )
    (tmp_path / "ok").mkdir()
    write_docs(tmp_path / "ok", complete)
    assert check(tmp_path / "ok") == []
    # `tgi_request_duration` only as part of a longer name is not documented
    (tmp_path / "bad").mkdir()
    write_docs(tmp_path / "bad", complete.replace("tgi_request_duration ", "tgi_request_duration_seconds "))
    assert check(tmp_path / "bad") == [
        "tgi: metric tgi_request_duration is not in the project's documentation"
    ]
