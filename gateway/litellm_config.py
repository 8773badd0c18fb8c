"""Compile a config bundle (routing policy version + cache config) to a LiteLLM proxy config, and
check a running proxy's read-back against it (pure: no Django, no I/O).

    compile_litellm(bundle, target) -> Compiled(config, not_enforced, problems)

`target` is what the control plane knows about one registered LiteLLM proxy (its adapter config):

    {"tier": "private_cloud",
     "deployments": {"local": {"model": "openai/llama-3-8b", "api_base": "...", "api_key": "os.environ/K"},
                     "private_cloud": {...}, "public_cloud": {...}},
     "failure": {"allowed_fails": 3, "cooldown_time": 30},        optional (LiteLLM's defaults otherwise)
     "callback": "gateway.litellm_callback.handler"}             optional (this is the default)

What is compiled (docs/gateways/litellm.md has the table):

* the policy's default chain (its last unconditional rule, else `default_chain`, else the standard
  chain): the first model hop is the model group clients call, named after the service; each later
  model hop is a group `<service>--<route>` and the router's fallback chain lists them in order;
* per hop: `timeout` (seconds) from `timeout_ms`, `num_retries` from `retries`;
* a `cache` hop, or any enabled result/semantic cache layer: LiteLLM's cache (exact, `local`, or
  `redis-semantic` with the user-facing similarity threshold), TTL from the layer, namespace from the
  cache config (default: the service);
* cooldowns from `target.failure`, the routing strategy (`latency-based-routing` when the policy
  chooses regions by RTT, else `simple-shuffle`);
* every deployment carries `model_info.slo_revision`, `slo_fingerprint`, `slo_route`, `slo_tier`: what
  the read-back checks, and what the telemetry callback labels requests with.

What the proxy cannot enforce is listed in `not_enforced` (path + reason), never dropped silently.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from routing.policy import parse_cache_config, parse_policy
from routing.policy.schema import STANDARD_CHAIN

KIND = "litellm-proxy"
MODEL_ROUTES = ("local", "private_cloud", "public_cloud")
DEFAULT_CALLBACK = "gateway.litellm_callback.handler"
MASTER_KEY_REF = "os.environ/LITELLM_MASTER_KEY"
ROUTER_KEYS = ("routing_strategy", "fallbacks", "num_retries", "allowed_fails", "cooldown_time")
CACHE_READ_BACK = ("type", "namespace", "ttl", "similarity_threshold")
FAILURE_KEYS = {"allowed_fails": (0, 1000), "cooldown_time": (0, 86_400)}
# deployment parameters a target may set (LiteLLM's litellm_params); the rest are refused
DEPLOYMENT_KEYS = frozenset(
    {
        "model",
        "api_base",
        "api_key",
        "api_version",
        "rpm",
        "tpm",
        "max_tokens",
        "temperature",
        "mock_response",
        "mock_delay",
        "region_name",
        "organization",
    }
)


@dataclass
class Compiled:
    config: dict[str, Any] = field(default_factory=dict)
    not_enforced: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)  # errors: nothing can be applied

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "not_enforced": self.not_enforced, "problems": self.problems}


def target_problems(target: Any) -> list[dict[str, str]]:
    """Problems of a LiteLLM target (the adapter config a gateway is registered with)."""
    if not isinstance(target, dict):
        return [{"path": "adapter", "message": "required for a litellm-proxy gateway (an object)"}]
    out: list[dict[str, str]] = []
    unknown = sorted(
        set(target) - {"proxy_url", "deployments", "failure", "callback", "tier", "semantic_cache"}
    )
    if unknown:
        out.append({"path": "adapter", "message": f"unknown keys: {', '.join(unknown)}"})
    url = target.get("proxy_url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        out.append({"path": "adapter.proxy_url", "message": "required: the proxy's http(s) base URL"})
    deployments = target.get("deployments")
    if not isinstance(deployments, dict) or not deployments:
        out.append({"path": "adapter.deployments", "message": "required: route -> LiteLLM litellm_params"})
    else:
        for route, params in sorted(deployments.items()):
            path = f"adapter.deployments.{route}"
            if route not in MODEL_ROUTES:
                out.append({"path": path, "message": f"unknown route: one of {', '.join(MODEL_ROUTES)}"})
                continue
            if (
                not isinstance(params, dict)
                or not isinstance(params.get("model"), str)
                or not params["model"]
            ):
                out.append({"path": f"{path}.model", "message": "required (a LiteLLM model string)"})
                continue
            for key in sorted(set(params) - DEPLOYMENT_KEYS):
                out.append({"path": f"{path}.{key}", "message": "not a supported deployment parameter"})
            key = params.get("api_key")
            if key is not None and not (isinstance(key, str) and key.startswith("os.environ/")):
                out.append(
                    {
                        "path": f"{path}.api_key",
                        "message": "name an environment variable of the proxy (os.environ/NAME); "
                        "secrets are never stored here",
                    }
                )
    failure = target.get("failure", {})
    if not isinstance(failure, dict):
        out.append({"path": "adapter.failure", "message": "an object"})
    else:
        for key in sorted(set(failure) - set(FAILURE_KEYS)):
            out.append({"path": f"adapter.failure.{key}", "message": "unknown key"})
        for key, (low, high) in FAILURE_KEYS.items():
            value = failure.get(key)
            if value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high
            ):
                out.append({"path": f"adapter.failure.{key}", "message": f"a number from {low} to {high}"})
    semantic = target.get("semantic_cache")
    if semantic is not None and not (
        isinstance(semantic, dict)
        and isinstance(semantic.get("embedding_model"), str)
        and set(semantic) <= {"embedding_model", "redis_url"}
    ):
        out.append(
            {
                "path": "adapter.semantic_cache",
                "message": "{embedding_model: <a model group>, redis_url: os.environ/NAME}",
            }
        )
    callback = target.get("callback", DEFAULT_CALLBACK)
    if not isinstance(callback, str) or not callback or " " in callback:
        out.append({"path": "adapter.callback", "message": "a dotted module.attribute path"})
    return out


def _default_chain(policy: Any) -> tuple[str, list[dict[str, Any]]]:
    if policy.rules and not policy.rules[-1].when.model_dump(exclude_none=True):
        index = len(policy.rules) - 1
        return f"rules[{index}].chain", [h.model_dump() for h in policy.rules[-1].chain]
    if policy.default_chain:
        return "default_chain", [h.model_dump() for h in policy.default_chain]
    return "standard chain", [dict(h) for h in STANDARD_CHAIN]


def _not_enforced_policy(doc: dict[str, Any], policy: Any, chain_path: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for index, rule in enumerate(policy.rules):
        conditions = sorted(rule.when.model_dump(exclude_none=True))
        if conditions and f"rules[{index}].chain" != chain_path:
            out.append(
                {
                    "path": f"rules[{index}]",
                    "reason": f"rule {rule.name!r} escalates on {', '.join(conditions)}: the proxy routes "
                    "every request by the default chain (no confidence, device-health, network, "
                    "privacy or region conditions)",
                }
            )
    if doc.get("admission") is not None and policy.admission.enabled:
        out.append(
            {
                "path": "admission",
                "reason": "admission control (rate limit, load shedding, best-effort offload, request "
                "collapsing) is not enforced: use LiteLLM's own rpm/tpm limits",
            }
        )
    for key, reason in (
        ("batching", "dynamic batching is a property of the model server, not of the proxy"),
        ("autoscaling", "autoscaling is not driven through the proxy"),
        ("regions", "region selection by RTT is approximated by latency-based routing"),
    ):
        if doc.get(key) is not None:
            out.append({"path": key, "reason": reason})
    if doc.get("exhausted_status") not in (None, 503):
        out.append(
            {"path": "exhausted_status", "reason": "the proxy answers its own status after the last hop"}
        )
    _, chain = _default_chain(policy)
    for k, hop in enumerate(chain):
        path = f"{chain_path}[{k}]"
        if hop.get("backoff_ms"):
            out.append({"path": f"{path}.backoff_ms", "reason": "LiteLLM retries use its own backoff"})
        if hop.get("region"):
            out.append({"path": f"{path}.region", "reason": "a region pin is not enforced by the proxy"})
        action = (hop.get("on_exhausted") or {}).get("action", "next")
        if action != "next":
            out.append(
                {
                    "path": f"{path}.on_exhausted",
                    "reason": f"'{action}' after a hop is not enforced: the proxy tries every fallback",
                }
            )
        if hop["route"] == "cache" and k > 0:
            out.append(
                {"path": f"{path}.route", "reason": "the proxy looks the cache up before the first hop"}
            )
    return out


def _cache_settings(
    cache_doc: dict[str, Any], service: str, chain: list[dict[str, Any]], semantic_target: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    cache, _ = parse_cache_config(cache_doc)
    out: list[dict[str, str]] = []
    if cache is None:
        return {}, out
    layers = [layer for layer in cache.layers if layer.enabled]
    semantic = next((layer for layer in layers if layer.kind == "semantic"), None)
    result = next((layer for layer in layers if layer.kind == "edge_result"), None)
    for index, layer in enumerate(cache.layers):
        if layer.enabled and layer.kind in ("regional_embedding", "regional_feature"):
            out.append(
                {
                    "path": f"layers[{index}]",
                    "reason": f"a {layer.kind} cache layer has no LiteLLM equivalent",
                }
            )
    if cache.tenant_field:
        out.append(
            {
                "path": "tenant_field",
                "reason": "the proxy's cache namespace is per proxy, not per tenant: run one proxy per "
                "tenant or keep tenants apart in the key",
            }
        )
    uses_cache = any(hop["route"] == "cache" for hop in chain)
    if semantic is not None and not semantic_target:
        out.append(
            {
                "path": f"layers[{cache.layers.index(semantic)}]",
                "reason": "a semantic cache needs Redis and an embedding model on the proxy "
                "(adapter.semantic_cache): not configured, so the exact cache is used",
            }
        )
        semantic = None
    chosen = semantic or result
    if chosen is None or not uses_cache:
        if chosen is not None:
            out.append({"path": "layers", "reason": "the default chain has no cache hop: the cache is off"})
        return {}, out
    params: dict[str, Any] = {
        "namespace": cache.namespace or service,
        "ttl": max(1, int(round(chosen.ttl))),
    }
    if chosen is semantic and chosen.semantic is not None:
        params["type"] = "redis-semantic"
        params["similarity_threshold"] = chosen.semantic.user_facing
        params["redis_semantic_cache_embedding_model"] = semantic_target["embedding_model"]
        params["redis_url"] = semantic_target.get("redis_url", "os.environ/REDIS_URL")
        if result is not None:
            out.append(
                {
                    "path": "layers",
                    "reason": "one LiteLLM cache: the semantic layer is used, not the exact one",
                }
            )
    else:
        params["type"] = "local"
    for index, layer in enumerate(cache.layers):
        if layer is chosen and (layer.max_entries != 10_000 or layer.eviction != "lru"):
            out.append({"path": f"layers[{index}]", "reason": "max_entries and eviction are LiteLLM's own"})
    return {"cache": True, "cache_params": params}, out


def fingerprint(config: dict[str, Any]) -> str:
    """sha256 over the config without its own fingerprint fields (stable across key order)."""
    clean = copy.deepcopy(config)
    for entry in clean.get("model_list", []):
        entry.get("model_info", {}).pop("slo_fingerprint", None)
    digest = hashlib.sha256(json.dumps(clean, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:16]


def compile_litellm(bundle: dict[str, Any], target: dict[str, Any]) -> Compiled:
    """The LiteLLM proxy config for `bundle` on `target`; problems block it (a NACK), not_enforced
    lists what the proxy will not do."""
    out = Compiled()
    out.problems = target_problems(target)
    policy, policy_problems = parse_policy(bundle.get("routing_policy"))
    out.problems += [{"path": f"routing_policy.{p.path}", "message": p.message} for p in policy_problems]
    if out.problems or policy is None:
        return out
    service = str(bundle.get("service") or policy.service)
    revision = bundle.get("revision")
    tier = str(target.get("tier") or "private_cloud")
    chain_path, chain = _default_chain(policy)
    deployments: dict[str, dict[str, Any]] = target["deployments"]
    hops = [hop for hop in chain if hop["route"] in MODEL_ROUTES]
    if not hops:
        out.problems.append({"path": f"routing_policy.{chain_path}", "message": "no model hop to compile"})
        return out
    missing = sorted({hop["route"] for hop in hops} - set(deployments))
    if missing:
        out.problems.append(
            {
                "path": f"routing_policy.{chain_path}",
                "message": f"this proxy has no deployment for route(s) {', '.join(missing)}",
            }
        )
        return out
    out.not_enforced = [
        {"path": f"routing_policy.{n['path']}", "reason": n["reason"]}
        for n in _not_enforced_policy(bundle["routing_policy"], policy, chain_path)
    ]
    model_list = []
    groups: list[str] = []
    for k, hop in enumerate(hops):
        group = service if k == 0 else f"{service}--{hop['route']}"
        groups.append(group)
        params = dict(deployments[hop["route"]])
        params["timeout"] = round(hop["timeout_ms"] / 1000, 6)
        if hop.get("retries"):
            params["num_retries"] = hop["retries"]
        model_list.append(
            {
                "model_name": group,
                "litellm_params": params,
                "model_info": {
                    "id": f"{service}--{k}-{hop['route']}",
                    "slo_service": service,
                    "slo_route": hop["route"],
                    "slo_tier": tier,
                    "slo_revision": revision,
                },
            }
        )
    failure = target.get("failure") or {}
    router: dict[str, Any] = {
        "routing_strategy": "latency-based-routing" if policy.regions is not None else "simple-shuffle",
        "num_retries": 0,
        "fallbacks": [{groups[0]: groups[1:]}] if len(groups) > 1 else [],
        "allowed_fails": int(failure.get("allowed_fails", 3)),
        "cooldown_time": failure.get("cooldown_time", 30),
    }
    litellm_settings: dict[str, Any] = {"callbacks": [target.get("callback") or DEFAULT_CALLBACK]}
    cache_settings, cache_notes = _cache_settings(
        bundle.get("cache_config") or {}, service, chain, target.get("semantic_cache") or {}
    )
    litellm_settings.update(cache_settings)
    out.not_enforced += [{"path": f"cache_config.{n['path']}", "reason": n["reason"]} for n in cache_notes]
    config = {
        "model_list": model_list,
        "router_settings": router,
        "litellm_settings": litellm_settings,
        "general_settings": {"master_key": MASTER_KEY_REF},
    }
    stamp = fingerprint(config)
    for entry in model_list:
        entry["model_info"]["slo_fingerprint"] = stamp
    out.config = config
    return out


# -- read-back ---------------------------------------------------------------------------------
def running_view(model_info: Any, router_settings: Any, cache_ping: Any) -> dict[str, Any]:
    """The running proxy's config in the compiled shape, from GET /model/info, GET /router/settings
    (`current_values`) and GET /cache/ping (None when the proxy has no cache)."""
    entries = model_info.get("data", []) if isinstance(model_info, dict) else []
    model_list = []
    for entry in entries:
        info = entry.get("model_info") or {}
        model_list.append(
            {
                "model_name": entry.get("model_name"),
                "litellm_params": {
                    k: v for k, v in (entry.get("litellm_params") or {}).items() if v is not None
                },
                "model_info": {k: v for k, v in info.items() if k == "id" or k.startswith("slo_")},
            }
        )
    model_list.sort(key=lambda e: str(e["model_info"].get("id")))
    current = router_settings.get("current_values", {}) if isinstance(router_settings, dict) else {}
    router = {key: current.get(key) for key in ROUTER_KEYS}
    settings: dict[str, Any] = {}
    if isinstance(cache_ping, dict) and cache_ping.get("status") == "healthy":
        params = cache_ping.get("litellm_cache_params")
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except ValueError:
                params = {}
        params = params if isinstance(params, dict) else {}
        settings = {
            "cache": True,
            "cache_params": {
                "type": cache_ping.get("cache_type") or params.get("type"),
                "namespace": params.get("namespace"),
                "ttl": params.get("ttl"),
            },
        }
        if params.get("similarity_threshold") is not None:
            settings["cache_params"]["similarity_threshold"] = params["similarity_threshold"]
    return {"model_list": model_list, "router_settings": router, "litellm_settings": settings}


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a compiled config the read-back can see, in `running_view`'s shape."""
    model_list = sorted(
        (
            {
                "model_name": e["model_name"],
                "litellm_params": dict(e["litellm_params"]),
                "model_info": dict(e["model_info"]),
            }
            for e in config.get("model_list", [])
        ),
        key=lambda e: str(e["model_info"].get("id")),
    )
    router = {key: config.get("router_settings", {}).get(key) for key in ROUTER_KEYS}
    settings = config.get("litellm_settings", {})
    cache: dict[str, Any] = {}
    if settings.get("cache"):
        params = settings.get("cache_params") or {}
        cache = {"cache": True, "cache_params": {k: params[k] for k in CACHE_READ_BACK if k in params}}
    return {"model_list": model_list, "router_settings": router, "litellm_settings": cache}


def readback_mismatches(expected: dict[str, Any], running: dict[str, Any]) -> list[str]:
    """Why the running proxy is not running `expected` (a compiled config); [] when it is.

    Deployments are matched by id: every expected key must read back equal (the proxy adds its own
    defaults, which are ignored), and no other deployment may be running. Router settings and the
    cache must read back equal."""
    want = comparable(expected)
    problems: list[str] = []
    running_by_id = {str(e["model_info"].get("id")): e for e in running.get("model_list", [])}
    wanted_ids = {str(e["model_info"].get("id")) for e in want["model_list"]}
    for extra in sorted(set(running_by_id) - wanted_ids):
        problems.append(f"deployment {extra} runs but is not in the desired config")
    for entry in want["model_list"]:
        ident = str(entry["model_info"].get("id"))
        got = running_by_id.get(ident)
        if got is None:
            problems.append(f"deployment {ident} is not running")
            continue
        if got["model_name"] != entry["model_name"]:
            problems.append(
                f"deployment {ident}: model_name {got['model_name']!r} != {entry['model_name']!r}"
            )
        for section in ("litellm_params", "model_info"):
            for key, value in entry[section].items():
                if key == "api_key":
                    continue  # the proxy resolves os.environ/ references: never compared
                seen = got[section].get(key)
                if not _same(seen, value):
                    problems.append(f"deployment {ident}: {section}.{key} is {seen!r}, want {value!r}")
    for key, value in want["router_settings"].items():
        seen = running.get("router_settings", {}).get(key)
        if not _same(seen, value if value != [] else None) and not _same(seen, value):
            problems.append(f"router_settings.{key} is {seen!r}, want {value!r}")
    want_cache = want["litellm_settings"]
    got_cache = running.get("litellm_settings", {})
    if bool(want_cache.get("cache")) != bool(got_cache.get("cache")):
        problems.append(
            f"cache is {'on' if got_cache.get('cache') else 'off'}, want {'on' if want_cache else 'off'}"
        )
    elif want_cache:
        for key, value in want_cache["cache_params"].items():
            seen = got_cache.get("cache_params", {}).get(key)
            if not _same(seen, value):
                problems.append(f"cache_params.{key} is {seen!r}, want {value!r}")
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return float(a) == float(b)
    return bool(a == b)


def config_diff(desired: dict[str, Any], running: dict[str, Any] | None) -> str:
    """A unified diff of the running config (read back) to the desired one, in the compared shape."""
    wanted = comparable(desired)
    keys: dict[str, set[str]] = {}
    for entry in wanted["model_list"]:
        entry["litellm_params"].pop("api_key", None)  # the proxy resolves it: never compared or shown
        keys[str(entry["model_info"].get("id"))] = set(entry["litellm_params"])
    projected = None
    if running is not None:
        projected = copy.deepcopy(running)
        for entry in projected.get("model_list", []):
            shown = keys.get(str(entry["model_info"].get("id")))
            if shown is not None:  # only what we set: the proxy's own defaults are noise here
                entry["litellm_params"] = {k: v for k, v in entry["litellm_params"].items() if k in shown}
            entry["litellm_params"].pop("api_key", None)
    want = json.dumps(wanted, indent=2, sort_keys=True).splitlines()
    have = json.dumps(projected, indent=2, sort_keys=True).splitlines() if projected is not None else []
    return "\n".join(difflib.unified_diff(have, want, fromfile="running", tofile="desired", lineterm="", n=2))
