"""The telemetry contract: metric names, labels and buckets an inference gateway exposes, and the
good/valid counter selectors each SLI kind is computed from. docs/telemetry.md is the prose version.

Pure: no Django, no I/O. `sli_queries` returns instant-vector selectors without range or rate; the
Prometheus rules generator wraps them in `sum(rate(sel[w]))` and the puller in `last_over_time`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from slo.spec import SERVICE_CLASSES, SloSpec

CONTRACT_VERSION = 1
PREFIX = "inference_"

# Label values (closed sets unless noted).
TIERS = ("edge", "private_cloud", "public_cloud")
ROUTES = ("local", "cache", "private_cloud", "public_cloud", "failed")
OUTCOMES = ("ok", "error", "timeout", "shed")
FALLBACK_OUTCOMES = ("ok", "error", "timeout")
CACHE_LAYERS = ("result", "embedding", "semantic")
CACHE_RESULTS = ("hit", "miss", "stale_hit", "semantic_hit")
STAGES = ("queue", "preprocessing", "model", "postprocessing", "network")
DOCUMENT_KINDS = ("routing_policy", "cache_config", "slo", "model")
TOKEN_DIRECTIONS = ("input", "output")
# Optional on every counter and histogram that carries `service`: the class of the request
# (interactive, batch, safety_critical, ...). A series without it belongs to no class; an SLO
# without a class counts every series, an SLO with one only the series of that class.
CLASS_LABEL = "service_class"
CLASSES = SERVICE_CLASSES

# Outcomes that count as valid events for availability and latency. `shed` is a request refused on
# purpose by admission control (load shedding, over quota), like an HTTP 429 to a client: it is
# counted but is not an attempt to serve, so it neither spends nor earns budget.
VALID_OUTCOMES = ("ok", "error", "timeout")

# Counters
REQUESTS_TOTAL = "inference_requests_total"  # {service, tier, route, outcome}
FALLBACKS_TOTAL = "inference_fallbacks_total"  # {service, tier, from_route, to_route, outcome}
CACHE_LOOKUPS_TOTAL = "inference_cache_lookups_total"  # {service, tier, layer, result}
COMPUTE_SECONDS_TOTAL = "inference_compute_seconds_total"  # {service, tier, accelerator}
EGRESS_BYTES_TOTAL = "inference_egress_bytes_total"  # {service, tier, route}
# LLM tokens processed, by who bills them: {service, tier, route, provider, model, direction}
TOKENS_TOTAL = "inference_tokens_total"

# Histograms (base names; series are <name>_bucket{le}, <name>_count, <name>_sum)
REQUEST_DURATION = "inference_request_duration_seconds"  # {service, tier, route, outcome!=shed}
STAGE_DURATION = "inference_request_stage_duration_seconds"  # {service, tier, stage} (optional)
ANSWER_DATA_AGE = "inference_answer_data_age_seconds"  # {service, tier, route}, outcome=ok answers
# LLM streaming: time to the first output token of an answer ({service, tier, route, outcome ok or
# timeout}), and time per output token after the first ({service, tier, route}, ok answers of at
# least two output tokens: (duration - ttft) / (output tokens - 1))
TIME_TO_FIRST_TOKEN = "inference_time_to_first_token_seconds"
TIME_PER_OUTPUT_TOKEN = "inference_time_per_output_token_seconds"

# Gauges
QUEUE_DEPTH = "inference_queue_depth"  # {service, tier}
ACTIVE_WORKERS = "inference_active_workers"  # {service, tier}
MODEL_CONFIDENCE = "inference_model_confidence"  # {service, tier, model_version}, mean over 60 s, 0..1
DEVICE_TEMPERATURE = "inference_device_temperature_celsius"  # {tier, device}
MEMORY_HEADROOM = "inference_memory_headroom_bytes"  # {tier, device}
BACKHAUL_RTT = "inference_backhaul_rtt_seconds"  # {tier, target}
CONFIG_REVISION = "inference_config_revision"  # {gateway, document_kind}, value = applied revision
CONFIG_REVISION_INFO = "inference_config_revision_info"  # {gateway, document_kind, document, revision} = 1

# Bucket boundaries (seconds). They include the usual SLO thresholds so a latency SLI is exact, not
# interpolated: a threshold must be one of the boundaries the gateway exposes.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
STAGE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# 1 s .. 7 days: the usual max_age_s of result caches and feature snapshots.
DATA_AGE_BUCKETS_S = (1, 5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800)
TTFT_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)
TPOT_BUCKETS_S = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1)

# The histogram (and its contract buckets) each latency-like SLI kind is judged on.
LATENCY_HISTOGRAMS = {
    "latency": REQUEST_DURATION,
    "ttft": TIME_TO_FIRST_TOKEN,
    "tpot": TIME_PER_OUTPUT_TOKEN,
}
HISTOGRAM_BUCKETS_S = {
    REQUEST_DURATION: LATENCY_BUCKETS_S,
    TIME_TO_FIRST_TOKEN: TTFT_BUCKETS_S,
    TIME_PER_OUTPUT_TOKEN: TPOT_BUCKETS_S,
}


@dataclass(frozen=True)
class SliQueries:
    """PromQL instant-vector selectors of counters for one SLI: exactly one of good/bad, plus total.

    No range, no rate: consumers wrap them (`sum(rate(sel[5m]))`, `last_over_time(sel[59999ms])`).
    """

    good: str | None
    bad: str | None
    total: str

    def __post_init__(self) -> None:
        if (self.good is None) == (self.bad is None):
            raise ValueError("exactly one of good or bad must be set")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector(metric: str, **matchers: str) -> str:
    """`metric{a="x",b=~"y"}`; a matcher value starting with `~` is a regex matcher."""
    parts = []
    for name, value in matchers.items():
        if value.startswith("~"):
            parts.append(f"{name}=~{_quote(value[1:])}")
        else:
            parts.append(f"{name}={_quote(value)}")
    return f"{metric}{{{','.join(parts)}}}"


def _digits_regex(int_digits: str, frac_digits: str) -> str:
    """Plain decimal spellings of int_digits.frac_digits (already stripped of leading/trailing zeros)."""
    int_part = f"0*{int_digits}" if int_digits else "0*"
    if frac_digits:
        return rf"{int_part}\.{frac_digits}0*"
    return rf"{int_part}(\.0*)?" if int_digits else r"0*(\.0*)?"


def _split_decimal(value: Decimal) -> tuple[str, str]:
    text = format(value, "f")
    int_part, _, frac_part = text.partition(".")
    return int_part.lstrip("0"), frac_part.rstrip("0")


def le_regex(threshold_seconds: float | int | str | Decimal) -> str:
    """A RE2 regex (anchored by Prometheus) matching every usual spelling of a bucket boundary.

    Accepts plain decimals with any leading or trailing zeros ("0.15", ".15", "0.150", "2", "2.0",
    "2.000") and scientific notation with any mantissa in [1, 10) spelling and exponent padding
    ("1.5e-01", "1.5E-1", "1e+06", "2e0"). The value is read through its shortest decimal form, so
    150 / 1000 and "0.15" give the same regex. Only finite, positive thresholds make sense. Digits
    beyond the shortest round-trip form ("0.15000000000000002", a 17-digit "%.17g" print) are a
    different spelling no mainstream client emits (Go, Python and Java print shortest digits) and
    do not match.
    """
    if isinstance(threshold_seconds, float):
        value = Decimal(repr(threshold_seconds))
    else:
        value = Decimal(str(threshold_seconds))
    if not value.is_finite() or value <= 0:
        raise ValueError(f"threshold must be a positive finite number, got {threshold_seconds!r}")
    value = value.normalize()
    plain = _digits_regex(*_split_decimal(value))
    # scientific: mantissa m in [1, 10), value = m * 10**exp
    digits = value.as_tuple().digits
    exp = value.adjusted()
    lead, rest = str(digits[0]), "".join(str(d) for d in digits[1:]).rstrip("0")
    mantissa = rf"{lead}(\.{rest}0*)" if rest else rf"{lead}(\.0*)?"
    if exp == 0:
        exponent = r"[+-]?0*"
    elif exp > 0:
        exponent = rf"\+?0*{exp}"
    else:
        exponent = rf"-0*{-exp}"
    return f"{plain}|{mantissa}[eE]{exponent}"


def _filters(spec: SloSpec) -> dict[str, str]:
    matchers = {"service": spec.service}
    if spec.tier is not None:
        matchers["tier"] = spec.tier
    if spec.service_class is not None:
        matchers[CLASS_LABEL] = spec.service_class
    return matchers


def _valid_outcomes() -> str:
    return "~" + "|".join(VALID_OUTCOMES)


def sli_queries(spec: SloSpec) -> SliQueries:
    """Good (or bad) and total counter selectors for the SLO's SLI, filtered by service and tier.

    - latency: good = `ok` requests in the duration bucket `le` = threshold; total = requests with
      outcome ok or timeout (a timeout is a slow answer; errors belong to availability, shed requests
      are not valid). The threshold must be a bucket boundary the gateway exposes; any spelling of it
      in `le` matches (see `le_regex`). A threshold that is no boundary matches no series: no data.
    - ttft: the same on the time-to-first-token histogram (ok answers within the threshold out of
      ok and timed-out ones); tpot: `ok` answers in the time-per-output-token bucket at the
      threshold out of all of them.
    - availability: good = outcome ok; total = outcome ok, error or timeout (shed is not valid).
    - fallback_success: good = fallbacks with outcome ok; total = all fallbacks.
    - freshness: good = `ok` answers in the data-age bucket `le` = max_age_s; total = all of them.
    - correctness: bad = stale cache hits; total = hits of any kind (hit, stale_hit, semantic_hit).
    - custom: the spec's own selectors, unchanged (no filters added).

    Filters: `service`, plus `tier` and `service_class` when the SLO names them.
    """
    sli = spec.sli
    where = _filters(spec)
    if sli.kind == "latency":
        assert sli.threshold_ms is not None  # guaranteed by Sli validation
        threshold_s = Decimal(repr(float(sli.threshold_ms))) / 1000
        return SliQueries(
            good=selector(
                f"{REQUEST_DURATION}_bucket", **where, outcome="ok", le="~" + le_regex(threshold_s)
            ),
            bad=None,
            total=selector(f"{REQUEST_DURATION}_count", **where, outcome="~ok|timeout"),
        )
    if sli.kind == "ttft":
        assert sli.threshold_ms is not None
        threshold_s = Decimal(repr(float(sli.threshold_ms))) / 1000
        return SliQueries(
            good=selector(
                f"{TIME_TO_FIRST_TOKEN}_bucket", **where, outcome="ok", le="~" + le_regex(threshold_s)
            ),
            bad=None,
            total=selector(f"{TIME_TO_FIRST_TOKEN}_count", **where, outcome="~ok|timeout"),
        )
    if sli.kind == "tpot":
        assert sli.threshold_ms is not None
        threshold_s = Decimal(repr(float(sli.threshold_ms))) / 1000
        return SliQueries(
            good=selector(f"{TIME_PER_OUTPUT_TOKEN}_bucket", **where, le="~" + le_regex(threshold_s)),
            bad=None,
            total=selector(f"{TIME_PER_OUTPUT_TOKEN}_count", **where),
        )
    if sli.kind == "availability":
        return SliQueries(
            good=selector(REQUESTS_TOTAL, **where, outcome="ok"),
            bad=None,
            total=selector(REQUESTS_TOTAL, **where, outcome=_valid_outcomes()),
        )
    if sli.kind == "fallback_success":
        return SliQueries(
            good=selector(FALLBACKS_TOTAL, **where, outcome="ok"),
            bad=None,
            total=selector(FALLBACKS_TOTAL, **where),
        )
    if sli.kind == "freshness":
        assert sli.max_age_s is not None
        return SliQueries(
            good=selector(f"{ANSWER_DATA_AGE}_bucket", **where, le="~" + le_regex(sli.max_age_s)),
            bad=None,
            total=selector(f"{ANSWER_DATA_AGE}_count", **where),
        )
    if sli.kind == "correctness":
        return SliQueries(
            good=None,
            bad=selector(CACHE_LOOKUPS_TOTAL, **where, result="stale_hit"),
            total=selector(CACHE_LOOKUPS_TOTAL, **where, result="~hit|stale_hit|semantic_hit"),
        )
    if sli.kind == "custom":
        assert sli.total_query is not None
        return SliQueries(good=sli.good_query or None, bad=sli.bad_query or None, total=sli.total_query)
    raise ValueError(f"unknown SLI kind {sli.kind!r}")


_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def is_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME_RE.match(name))
