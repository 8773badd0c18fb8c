from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.contract import LATENCY_BUCKETS_S, SliQueries, le_regex, sli_queries
from slo.spec import SloSpec


def matches(threshold: Any, spelling: str) -> bool:
    # Prometheus anchors label regexes: ^(?:re)$
    return re.fullmatch(f"(?:{le_regex(threshold)})", spelling) is not None


@pytest.mark.parametrize(
    ("threshold", "spellings"),
    [
        (0.15, ["0.15", "0.150", ".15", "00.15", "0.1500000", "1.5e-01", "1.5E-1", "1.50e-1", "1.5e-001"]),
        (2, ["2", "2.0", "2.000", "02", "2.", "2e0", "2e+00", "2E0", "2.0e+00"]),
        (10, ["10", "10.0", "1e+01", "1e1", "1.0e1", "1E+1"]),
        (0.025, ["0.025", "0.0250", ".025", "2.5e-02", "2.5e-2"]),
        (1.5, ["1.5", "1.50", "1.5e0", "1.5e+00"]),
        (0.001, ["0.001", "1e-03", "1e-3", "1.0e-3"]),
        (300, ["300", "300.0", "3e+02", "3e2"]),
        ("0.150", ["0.15", "1.5e-01"]),
    ],
)
def test_le_regex_accepts_every_spelling(threshold: Any, spellings: list[str]) -> None:
    for spelling in spellings:
        assert matches(threshold, spelling), spelling


@pytest.mark.parametrize(
    ("threshold", "spellings"),
    [
        (0.15, ["0.015", "1.5", "0.1", "0.151", "15", "1.5e-02", "+Inf", "0.15.0", "", "0.1 5"]),
        (2, ["20", "0.2", "2.01", "12", "2e1", "2e-1", "+Inf"]),
        (10, ["1", "100", "1e0", "1.01e1"]),
    ],
)
def test_le_regex_rejects_other_values(threshold: Any, spellings: list[str]) -> None:
    for spelling in spellings:
        assert not matches(threshold, spelling), spelling


def test_le_regex_reads_floats_by_their_shortest_form() -> None:
    assert le_regex(150 / 1000) == le_regex("0.15")
    with pytest.raises(ValueError):
        le_regex(0)
    with pytest.raises(ValueError):
        le_regex(float("inf"))


def spellings_of(x: float) -> list[str]:
    """How client libraries print a bucket boundary: Go, Python, Java, and normalising servers.

    All use the shortest round-trip digits; a 17-digit spelling ("1.0000009999999999" for 1.000001)
    is not matched, which le_regex documents.
    """
    out = [repr(x), str(x), format(x, "g"), format(x, "e"), format(x, "E"), format(x, ".3e")]
    if x == int(x):
        out += [str(int(x)), f"{int(x)}.0"]
    if 1e-4 <= x < 1e15:
        out.append(format(x, "f"))
    return out


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False))
@settings(max_examples=300)
def test_le_regex_matches_library_spellings_of_any_float(x: float) -> None:
    for spelling in spellings_of(x):
        if float(spelling) == x:  # skip lossy spellings (e.g. "%e" keeps 6 digits)
            assert matches(x, spelling), (x, spelling)


@given(
    st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False),
)
@settings(max_examples=300)
def test_le_regex_never_matches_another_value(x: float, y: float) -> None:
    if x != y:
        for spelling in (repr(y), format(y, ".17g")):
            if float(spelling) == y:
                assert not matches(x, spelling), (x, spelling)


def spec(**sli: Any) -> SloSpec:
    return SloSpec.model_validate(
        {
            "name": "fast-answers",
            "service": "shelf-vision",
            "tier": "edge",
            "sli": sli,
            "objective": 99.5,
            "window": {"type": "rolling", "days": 28},
        }
    )


def assert_instant_selector(sel: str | None) -> None:
    if sel is None:
        return
    outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', sel)
    assert re.fullmatch(r'[a-z_:]+\{([a-z_]+=~?"",?)+\}', outside_strings), sel


@pytest.mark.parametrize(
    "sli",
    [
        {"kind": "latency", "threshold_ms": 150},
        {"kind": "availability"},
        {"kind": "fallback_success"},
        {"kind": "freshness", "max_age_s": 300},
        {"kind": "correctness"},
    ],
)
def test_every_builtin_kind_gives_filtered_instant_selectors(sli: dict[str, Any]) -> None:
    q = sli_queries(spec(**sli))
    for sel in (q.good, q.bad, q.total):
        assert_instant_selector(sel)
        if sel is not None:
            assert 'service="shelf-vision"' in sel and 'tier="edge"' in sel
    assert (q.good is None) != (q.bad is None)


def test_latency_compares_the_threshold_bucket_with_ok_and_timeout_requests() -> None:
    q = sli_queries(spec(kind="latency", threshold_ms=150))
    assert q.good is not None and q.good.startswith("inference_request_duration_seconds_bucket{")
    assert 'outcome="ok"' in q.good and "le=~" in q.good
    assert q.total == (
        'inference_request_duration_seconds_count{service="shelf-vision",tier="edge",outcome=~"ok|timeout"}'
    )
    # the regex sits in a PromQL string, where a backslash must be escaped
    assert "\\\\." in q.good


def test_availability_excludes_shed_requests() -> None:
    q = sli_queries(spec(kind="availability"))
    assert q == SliQueries(
        good='inference_requests_total{service="shelf-vision",tier="edge",outcome="ok"}',
        bad=None,
        total='inference_requests_total{service="shelf-vision",tier="edge",outcome=~"ok|error|timeout"}',
    )


def test_correctness_is_stale_hits_out_of_all_hits() -> None:
    q = sli_queries(spec(kind="correctness"))
    assert q.good is None
    assert q.bad == 'inference_cache_lookups_total{service="shelf-vision",tier="edge",result="stale_hit"}'
    assert 'result=~"hit|stale_hit|semantic_hit"' in q.total


def test_no_tier_filter_when_the_slo_covers_all_tiers() -> None:
    s = spec(kind="availability").model_copy(update={"tier": None})
    assert "tier=" not in sli_queries(s).total


def test_custom_kind_uses_its_own_queries() -> None:
    q = sli_queries(
        spec(kind="custom", bad_query='errors_total{job="x"}', total_query='requests_total{job="x"}')
    )
    assert q == SliQueries(good=None, bad='errors_total{job="x"}', total='requests_total{job="x"}')


def test_sli_queries_need_exactly_one_of_good_and_bad() -> None:
    with pytest.raises(ValueError):
        SliQueries(good="a", bad="b", total="c")
    with pytest.raises(ValueError):
        SliQueries(good=None, bad=None, total="c")


def test_every_latency_bucket_has_a_working_regex() -> None:
    for boundary in LATENCY_BUCKETS_S:
        assert matches(boundary, repr(float(boundary)))
