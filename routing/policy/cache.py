"""The cache config document, its validation, and the cache-key builder.

A key that leaves out something the cached answer depends on (the model version, the prompt
template, the feature schema, the routing policy version, the tenant) serves wrong answers after
a release or across tenants; the validator refuses such keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema

from slo.spec import NAME_RE, Problem

from ._paths import problems_from_validation_error

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_TTL_S = 90 * 86_400  # Portkey's max_age ceiling; older entries are almost surely stale
KEY_FIELD_RE = r"^[a-z][a-z0-9_]*$"

LayerKind = Literal["edge_result", "regional_embedding", "regional_feature", "semantic"]
InvalidateOn = Literal["model_version", "source_data_version", "prompt_template_version", "policy_version"]
# what a cached value of each kind depends on, so what its key must contain
REQUIRED_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "edge_result": ("model_version", "prompt_template_version", "feature_schema_version", "policy_version"),
    "semantic": ("model_version", "prompt_template_version", "feature_schema_version", "policy_version"),
    "regional_embedding": ("model_version", "feature_schema_version"),
    "regional_feature": ("feature_schema_version",),
}
TENANT_FIELD = "tenant_id"


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a string like "300s", "5m", "2h", "7d", "1w", "250ms"."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '300s', '2h', '7d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
    else:
        raise ValueError(f"invalid duration {value!r}: use a number of seconds or e.g. '300s', '2h', '7d'")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"anyOf": [{"type": "number", "minimum": 0}, {"type": "string", "pattern": _DURATION_RE.pattern}]}
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SemanticThresholds(_Strict):
    """Cosine-similarity thresholds; below 0.9 for user-facing answers needs a stated reason."""

    user_facing: Annotated[float, Field(ge=0, le=1)] = 0.95
    prefetch: Annotated[float, Field(ge=0, le=1)] = 0.85
    reason: str | None = None


class CacheLayer(_Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    kind: LayerKind
    enabled: bool = True
    # request fields hashed into the key; order does not matter (keys use a canonical order)
    key: Annotated[list[Annotated[str, Field(pattern=KEY_FIELD_RE)]], Field(min_length=1)]
    ttl: Duration
    max_entries: Annotated[int, Field(gt=0)] = 10_000
    eviction: Literal["lru", "lfu", "ttl"] = "lru"
    semantic: SemanticThresholds | None = None
    # a hit must come from the model version now serving: model_version must be in the key
    model_version_match_required: bool = True
    invalidate_on: list[InvalidateOn] = Field(
        default_factory=lambda: cast(list[InvalidateOn], ["model_version"])
    )


class CacheAlerts(_Strict):
    # alert when the hit rate falls by this share (percent) against its trailing baseline
    hit_rate_drop_pct: Annotated[float, Field(gt=0, le=100)] = 20
    # alert when more than this ratio of hits serve data older than its source
    stale_hit_rate_max: Annotated[float, Field(ge=0, le=1)] = 0.02


class CacheConfig(_Strict):
    """The cache layers of one service. Keys hash `namespace` (default: the service), the tenant
    when `tenant_field` is set, and each layer's key fields."""

    service: Annotated[str, Field(pattern=NAME_RE)]
    namespace: str | None = None
    # request field whose value isolates tenants in the namespace (multi-tenant services)
    tenant_field: Annotated[str, Field(pattern=KEY_FIELD_RE)] | None = None
    layers: list[CacheLayer] = Field(default_factory=list)
    alerts: CacheAlerts = Field(default_factory=CacheAlerts)

    def layer(self, name_or_kind: str) -> CacheLayer:
        for layer in self.layers:
            if layer.name == name_or_kind:
                return layer
        for layer in self.layers:
            if layer.kind == name_or_kind:
                return layer
        raise KeyError(f"no cache layer named {name_or_kind!r}")


def parse_cache_config(data: Any) -> tuple[CacheConfig | None, list[Problem]]:
    if isinstance(data, CacheConfig):
        return data, []
    if not isinstance(data, dict):
        return None, [Problem("cache", "must be an object")]
    try:
        return CacheConfig.model_validate(data), []
    except ValidationError as exc:
        return None, problems_from_validation_error(exc, root="cache")


def cache_config_json_schema() -> dict[str, Any]:
    return CacheConfig.model_json_schema()


def validate_cache_config(doc: Any, *, multi_tenant: bool = False) -> list[Problem]:
    """All problems of a cache config document (dict from JSON/YAML, or a CacheConfig)."""
    config, problems = parse_cache_config(doc)
    if config is None:
        return problems
    names: dict[str, int] = {}
    for index, layer in enumerate(config.layers):
        path = f"layers[{index}]"
        if layer.name in names:
            problems.append(
                Problem(
                    f"{path}.name", f"duplicate layer name {layer.name!r} (also layers[{names[layer.name]}])"
                )
            )
        names.setdefault(layer.name, index)
        problems += _check_layer(layer, path, config, multi_tenant)
    return problems


def _check_layer(layer: CacheLayer, path: str, config: CacheConfig, multi_tenant: bool) -> list[Problem]:
    problems: list[Problem] = []
    key = set(layer.key)
    duplicates = sorted({f for f in layer.key if layer.key.count(f) > 1})
    if duplicates:
        problems.append(Problem(f"{path}.key", f"repeated key fields: {', '.join(duplicates)}", "warning"))
    required = list(REQUIRED_KEY_FIELDS[layer.kind])
    if layer.model_version_match_required and "model_version" not in required:
        required.insert(0, "model_version")
    missing = [f for f in required if f not in key]
    if missing:
        problems.append(
            Problem(
                f"{path}.key",
                f"the key of a {layer.kind} layer lacks {', '.join(missing)}: entries would "
                "survive a change of what they depend on and be served stale",
            )
        )
    if multi_tenant and config.tenant_field is None and TENANT_FIELD not in key:
        problems.append(
            Problem(
                f"{path}.key",
                f"a multi-tenant service needs the tenant in the key: add {TENANT_FIELD} or set tenant_field",
            )
        )
    if layer.ttl == 0:
        problems.append(Problem(f"{path}.ttl", "a TTL of 0 caches nothing; disable the layer instead"))
    elif layer.ttl > MAX_TTL_S:
        problems.append(
            Problem(f"{path}.ttl", f"TTL of {layer.ttl / 86_400:g} days is beyond the 90-day maximum")
        )
    if layer.kind == "semantic":
        if layer.semantic is None:
            problems.append(
                Problem(
                    f"{path}.semantic", "a semantic layer needs similarity thresholds (user_facing, prefetch)"
                )
            )
        else:
            if layer.semantic.user_facing < 0.9 and not (layer.semantic.reason or "").strip():
                problems.append(
                    Problem(
                        f"{path}.semantic.user_facing",
                        f"user-facing similarity threshold "
                        f"{layer.semantic.user_facing:g} is below 0.9 without a stated reason: low thresholds "
                        "serve false hits",
                    )
                )
            if layer.semantic.prefetch > layer.semantic.user_facing:
                problems.append(
                    Problem(
                        f"{path}.semantic.prefetch",
                        "prefetch threshold above the user-facing "
                        "one: prefetched entries would rarely be served",
                        "warning",
                    )
                )
    elif layer.semantic is not None:
        problems.append(Problem(f"{path}.semantic", "similarity thresholds only apply to a semantic layer"))
    if (
        layer.kind in ("edge_result", "semantic", "regional_embedding")
        and "model_version" not in layer.invalidate_on
    ):
        problems.append(
            Problem(
                f"{path}.invalidate_on", "entries are not invalidated on a model_version change", "warning"
            )
        )
    if layer.eviction == "ttl" and layer.max_entries and layer.kind == "edge_result":
        # TTL-only eviction on a device with little memory means entries are dropped at random when full
        problems.append(
            Problem(f"{path}.eviction", "ttl eviction on an edge device; lru bounds memory better", "warning")
        )
    return problems


@dataclass(frozen=True, slots=True)
class CacheKey:
    """`key` is sha256 hex over the namespace and the parts; `missing` fields hash as null, and a
    key with missing fields should not be used to store or serve (`cacheable` is False)."""

    key: str
    namespace: str
    parts: tuple[tuple[str, Any], ...]
    missing: tuple[str, ...]

    @property
    def cacheable(self) -> bool:
        return not self.missing

    def explain(self) -> str:
        lines = [f"key {self.key[:16]}... in namespace {self.namespace!r}"]
        for name, value in self.parts:
            lines.append(
                f"  {name} = {'MISSING' if name in self.missing else json.dumps(value, default=str)}"
            )
        if self.missing:
            lines.append(f"  not cacheable: the request lacks {', '.join(self.missing)}")
        return "\n".join(lines)


def cache_key(
    config: CacheConfig | dict[str, Any], layer: str | CacheLayer, request: dict[str, Any]
) -> CacheKey:
    """The key of `request` in a cache layer (by name, or kind when no name matches).

    Fields are hashed in sorted order with canonical JSON values, so reordering the configured key
    or the request's dict never changes the key.
    """
    if not isinstance(config, CacheConfig):
        config = CacheConfig.model_validate(config)
    chosen = layer if isinstance(layer, CacheLayer) else config.layer(layer)
    namespace = config.namespace or config.service
    missing: list[str] = []
    if config.tenant_field is not None:
        tenant = request.get(config.tenant_field)
        if tenant is None:
            missing.append(config.tenant_field)
        namespace = f"{namespace}/{tenant}"
    namespace = f"{namespace}/{chosen.name}"
    parts = []
    for name in sorted(set(chosen.key)):
        value = request.get(name)
        if value is None:
            missing.append(name)
        parts.append((name, value))
    payload = json.dumps(
        [namespace, parts], sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()
    return CacheKey(digest, namespace, tuple(parts), tuple(missing))
