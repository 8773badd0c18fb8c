"""Routing policies and cache configs: the pure core (no Django).

The control plane validates and stores these documents; the reference gateway imports the same
functions to decide routes and build cache keys.
"""

from slo.spec import Problem

from .autoscale import (
    ScaleDecision,
    TelemetryWindow,
    device_stress_reason,
    evaluate_autoscale,
    scale_out_reason,
)
from .cache import (
    CacheConfig,
    CacheKey,
    CacheLayer,
    cache_config_json_schema,
    cache_key,
    parse_cache_config,
    parse_duration,
    validate_cache_config,
)
from .defaults import default_cache_config, default_policy
from .engine import (
    CompiledPolicy,
    ConditionMiss,
    DecidedHop,
    Decision,
    PolicyError,
    RuleTrace,
    compile_policy,
    decide,
)
from .schema import (
    FAILED,
    MAX_CHAIN_HOPS,
    ROUTES,
    Autoscaling,
    Hop,
    RoutingPolicy,
    Rule,
    When,
    parse_policy,
    routing_policy_json_schema,
)
from .simulate import (
    RouteStats,
    SimulationReport,
    VersionReport,
    draw_recorded_contexts,
    generate_contexts,
    simulate,
)
from .threshold import Recommendation, ThresholdRow, recommend_threshold
from .validate import chain_worst_case_ms, validate_policy

__all__ = [
    "FAILED",
    "MAX_CHAIN_HOPS",
    "ROUTES",
    "Autoscaling",
    "CacheConfig",
    "CacheKey",
    "CacheLayer",
    "CompiledPolicy",
    "ConditionMiss",
    "DecidedHop",
    "Decision",
    "Hop",
    "PolicyError",
    "Problem",
    "Recommendation",
    "RouteStats",
    "RoutingPolicy",
    "Rule",
    "RuleTrace",
    "ScaleDecision",
    "SimulationReport",
    "TelemetryWindow",
    "ThresholdRow",
    "VersionReport",
    "When",
    "cache_config_json_schema",
    "cache_key",
    "chain_worst_case_ms",
    "compile_policy",
    "decide",
    "default_cache_config",
    "default_policy",
    "draw_recorded_contexts",
    "evaluate_autoscale",
    "device_stress_reason",
    "scale_out_reason",
    "generate_contexts",
    "parse_cache_config",
    "parse_duration",
    "parse_policy",
    "recommend_threshold",
    "routing_policy_json_schema",
    "simulate",
    "validate_cache_config",
    "validate_policy",
]
