"""The routing policy document: which route answers which request, and how hard to try.

A policy is an ordered list of rules. The first rule whose `when` conditions all hold picks a
fallback chain of hops (local edge model, cache, private cloud, public cloud); when every hop is
exhausted the request fails explicitly. Admission control runs before the rules. Everything here
is plain pydantic: no Django, so the reference gateway can load the same documents.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slo.spec import NAME_RE, Problem

from ._paths import problems_from_validation_error

ROUTES = ("local", "cache", "private_cloud", "public_cloud")
# `failed` is never configured as a hop: it is the explicit terminal of every decided chain
FAILED = "failed"
PRIORITIES = ("critical", "high", "normal", "low")
NETWORK_QUALITIES = ("good", "fair", "poor", "offline")
# LiteLLM caps fallback chains at 5; longer chains mostly pay for retries on dead targets
MAX_CHAIN_HOPS = 5

Route = Literal["local", "cache", "private_cloud", "public_cloud"]
Priority = Literal["critical", "high", "normal", "low"]
ServiceClass = Literal["interactive", "near_real_time", "batch", "privacy_sensitive", "safety_critical"]
NetworkQuality = Literal["good", "fair", "poor", "offline"]

RULE_NAME_RE = NAME_RE
Unit = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class When(_Strict):
    """Conditions over the request context; all given conditions must hold (AND).

    Numeric ranges are half-open: `x_min <= value < x_max`, so adjacent rules tile without
    overlapping. A condition on a field the context does not carry never holds.
    """

    service_class_in: list[ServiceClass] | None = None
    priority_in: list[Priority] | None = None
    confidence_min: Unit | None = None
    confidence_max: Unit | None = None
    temperature_c_min: float | None = None
    temperature_c_max: float | None = None
    memory_headroom_pct_min: Annotated[float, Field(ge=0, le=100)] | None = None
    memory_headroom_pct_max: Annotated[float, Field(ge=0, le=100)] | None = None
    # queue depth divided by active workers (2.0 = two waiting requests per worker)
    queue_ratio_min: NonNegative | None = None
    queue_ratio_max: NonNegative | None = None
    request_age_ms_min: NonNegative | None = None
    request_age_ms_max: NonNegative | None = None
    rtt_ms_min: NonNegative | None = None
    rtt_ms_max: NonNegative | None = None
    network_quality_in: list[NetworkQuality] | None = None
    payload_bytes_min: NonNegative | None = None
    payload_bytes_max: NonNegative | None = None
    privacy: bool | None = None
    region_in: list[str] | None = None
    region_not_in: list[str] | None = None

    def is_unconditional(self) -> bool:
        return not self.model_dump(exclude_none=True)


class OnExhausted(_Strict):
    """What happens when a hop has used all its attempts.

    `next` moves on to the following hop (the last hop then fails with the policy's
    `exhausted_status`); `fail` stops with `status`; `degrade` stops with a degraded answer.
    """

    action: Literal["next", "fail", "degrade"] = "next"
    status: Annotated[int, Field(ge=400, le=599)] = 503
    degrade_to: Literal["stale_cache", "default_response", "smaller_model"] | None = None

    @model_validator(mode="after")
    def _degrade_target(self) -> OnExhausted:
        if self.action == "degrade" and self.degrade_to is None:
            raise ValueError("degrade needs degrade_to (stale_cache, default_response or smaller_model)")
        if self.action != "degrade" and self.degrade_to is not None:
            raise ValueError("degrade_to only applies to action: degrade")
        return self


class Hop(_Strict):
    """One step of a fallback chain: a route tried `1 + retries` times."""

    route: Route
    # private_cloud only: pin a region; without it the nearest healthy candidate is chosen
    region: str | None = None
    timeout_ms: Annotated[float, Field(gt=0, le=600_000)]
    retries: Annotated[int, Field(ge=0, le=10)] = 0
    # wait before retry k (0-based) is backoff_ms * backoff_multiplier ** k
    backoff_ms: NonNegative = 0
    backoff_multiplier: Annotated[float, Field(ge=1, le=10)] = 2.0
    on_exhausted: OnExhausted = Field(default_factory=OnExhausted)

    @field_validator("on_exhausted", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `on_exhausted: fail` is shorthand for `{action: fail}`
        return {"action": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _region_route(self) -> Hop:
        if self.region is not None and self.route != "private_cloud":
            raise ValueError("region only applies to a private_cloud hop")
        return self

    def worst_case_ms(self) -> float:
        """Every attempt times out, with every backoff wait in between."""
        backoffs = sum(self.backoff_ms * self.backoff_multiplier**k for k in range(self.retries))
        return self.timeout_ms * (1 + self.retries) + backoffs


class Rule(_Strict):
    """When the conditions hold, try the chain of hops in order."""

    name: Annotated[str, Field(pattern=RULE_NAME_RE)]
    description: str = ""
    when: When = Field(default_factory=When)
    chain: Annotated[list[Hop], Field(min_length=1)]


class Admission(_Strict):
    """Admission control, applied before any rule.

    A `safety_critical` request is always admitted, whatever the settings say. Priorities in
    `always_admit_priorities` skip the rate limit and load shedding too.
    """

    enabled: bool = True
    always_admit_priorities: list[Priority] = Field(
        default_factory=lambda: cast(list[Priority], ["critical"])
    )
    # the gateway measures the service's request rate; above this, non-exempt requests get 429
    rate_limit_rps: Annotated[float, Field(gt=0)] | None = None
    # above this load (percent of capacity, reported by the gateway) shed these priorities
    shed_load_pct: Annotated[float, Field(gt=0, le=100)] = 90
    shed_priorities: list[Priority] = Field(default_factory=lambda: cast(list[Priority], ["low"]))
    # identical in-flight requests share one inference
    collapse_requests: bool = False
    # instead of shedding, send shed-eligible requests to public cloud on a best-effort basis
    # (never for privacy-flagged requests, which are shed)
    best_effort_offload: bool = True
    offload_timeout_ms: Annotated[float, Field(gt=0)] = 2_000


class Batching(_Strict):
    """Dynamic batching on the local model: flush at max_batch_size or after max_wait_ms."""

    max_wait_ms: Annotated[float, Field(ge=0, le=10_000)] = 5
    max_batch_size: Annotated[int, Field(ge=1, le=4096)] = 8


class EdgeSignals(_Strict):
    """Device signals that move load off an edge device (and keep it from scaling in)."""

    max_temperature_c: float = 85
    min_memory_headroom_pct: Annotated[float, Field(ge=0, le=100)] = 10
    # while the backhaul to the cloud is unhealthy, offload is impossible: never scale in
    require_backhaul_healthy: bool = True
    # optional: the oldest queued request's age and the accelerator's utilisation (None: not used)
    max_request_age_ms: Annotated[float, Field(gt=0)] | None = None
    max_accelerator_util_pct: Annotated[float, Field(gt=0, le=100)] | None = None


class Autoscaling(_Strict):
    """Scale-out and scale-in rules; the defaults are the house standard.

    Scale out when queue depth > 2x active workers for 60 s, or when p95 latency is above 80%
    of the SLO latency threshold for 3 consecutive windows. Scale in only after a longer calm
    period and a longer cooldown than scale-out, so capacity does not flap.
    """

    enabled: bool = True
    min_workers: Annotated[int, Field(ge=0)] = 1
    max_workers: Annotated[int, Field(ge=1)] = 16
    scale_out_queue_ratio: Annotated[float, Field(gt=0)] = 2.0
    scale_out_queue_for_s: Annotated[float, Field(gt=0)] = 60
    scale_out_p95_pct_of_slo: Annotated[float, Field(gt=0, le=1000)] = 80
    scale_out_p95_windows: Annotated[int, Field(ge=1)] = 3
    scale_in_queue_ratio: NonNegative = 0.5
    scale_in_p95_pct_of_slo: Annotated[float, Field(ge=0, le=1000)] = 50
    scale_in_for_s: Annotated[float, Field(gt=0)] = 600
    scale_out_cooldown_s: NonNegative = 60
    scale_in_cooldown_s: NonNegative = 300
    edge: EdgeSignals = Field(default_factory=EdgeSignals)


class RegionCandidate(_Strict):
    name: Annotated[str, Field(min_length=1)]
    # typical round trip from a client region to this region
    rtt_ms: dict[str, NonNegative] = Field(default_factory=dict)
    # models deployed here; empty means every model
    models: list[str] = Field(default_factory=list)


class Regions(_Strict):
    """Private-cloud regions: a private_cloud hop without a pinned region goes to the nearest
    healthy candidate, preferring (or requiring) one that already serves the request's model."""

    candidates: Annotated[list[RegionCandidate], Field(min_length=1)]
    selection: Literal["nearest_healthy"] = "nearest_healthy"
    model_affinity: Literal["prefer", "require", "off"] = "prefer"


class RoutingPolicy(_Strict):
    """The routing policy of one service.

    Rules are tried in order. If the last rule is not unconditional, an implicit default rule
    named `default` follows it, with `default_chain` (or local, cache, private cloud, public
    cloud when that is not given).
    """

    service: Annotated[str, Field(pattern=NAME_RE)]
    description: str = ""
    rules: list[Rule] = Field(default_factory=list)
    default_chain: Annotated[list[Hop], Field(min_length=1)] | None = None
    # status of the explicit failure after the last hop of a chain is exhausted
    exhausted_status: Annotated[int, Field(ge=400, le=599)] = 503
    admission: Admission = Field(default_factory=Admission)
    batching: Batching | None = None
    autoscaling: Autoscaling = Field(default_factory=Autoscaling)
    regions: Regions | None = None


# local first, cache second, cloud third, explicit failure last
STANDARD_CHAIN: tuple[dict[str, Any], ...] = (
    {"route": "local", "timeout_ms": 40},
    {"route": "cache", "timeout_ms": 10},
    {"route": "private_cloud", "timeout_ms": 120, "retries": 1, "backoff_ms": 10},
    {"route": "public_cloud", "timeout_ms": 250},
)


def implicit_default_chain() -> list[Hop]:
    return [Hop.model_validate(hop) for hop in STANDARD_CHAIN]


def parse_policy(data: Any) -> tuple[RoutingPolicy | None, list[Problem]]:
    """Validate a plain dict (parsed from JSON or YAML): (policy, []) or (None, problems)."""
    if isinstance(data, RoutingPolicy):
        return data, []
    if not isinstance(data, dict):
        return None, [Problem("policy", "must be an object")]
    try:
        return RoutingPolicy.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)


def routing_policy_json_schema() -> dict[str, Any]:
    return RoutingPolicy.model_json_schema()
