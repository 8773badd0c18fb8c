"""Gateway kinds and their adapters: how a desired revision reaches a gateway and how its ACK is
confirmed. Delivery, ACK/NACK, desired-versus-applied, reconcile, waves, canaries and rollback are
the same for every kind (routing.fleet.delivery calls `adapter_for(gateway)`); only these differ.

* `reference`: the signed bundle to the gateway's push URL; the gateway's 200 ack is the ACK.
* `litellm-proxy`: the bundle is compiled to a LiteLLM proxy config (gateway.litellm_config) and
  the signed compiled config goes to the LiteLLM agent beside the proxy (gateway.litellm_agent),
  which restarts the proxy on it. The ACK is then the control plane's own read-back of the running
  proxy (GET /model/info, /router/settings, /cache/ping with the proxy's master key) matching the
  desired revision and fingerprint; "the request returned 200" is never enough. A bundle that does
  not compile (a route this proxy has no deployment for) is a NACK without a push.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from controlplane.crypto import SecretUnreadable, decrypt_secret, encrypt_secret
from gateway.litellm_agent import read_back
from gateway.litellm_config import (
    KIND as LITELLM_KIND,
)
from gateway.litellm_config import (
    compile_litellm,
    config_diff,
    readback_mismatches,
    target_problems,
)
from routing.fleet.bundle import bundle_bytes
from routing.fleet.push import PushOutcome, push_bundle
from routing.models.fleet import KIND_LITELLM, KIND_REFERENCE, Gateway
from slo.spec import Problem

KINDS = (KIND_REFERENCE, KIND_LITELLM)
assert LITELLM_KIND == KIND_LITELLM
# the agent restarts the proxy before it answers: seconds, not milliseconds
LITELLM_PUSH_READ_TIMEOUT_S = 180.0
READ_BACK_TIMEOUT_S = 10.0


@dataclass
class Prepared:
    """What one push sends: the signed body and the push function's extra arguments."""

    body: bytes
    push: Callable[..., PushOutcome]
    extra: dict[str, Any] = field(default_factory=dict)


def clean_adapter(
    data: Mapping[str, Any], *, partial: bool, current: Gateway | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """`kind`, `adapter` and `adapter_secret` of a register/update payload -> model fields."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    kind = data.get("kind", current.kind if current is not None else KIND_REFERENCE)
    if "kind" in data and current is not None and data["kind"] != current.kind:
        problems.append(Problem("kind", "a gateway's kind is fixed: register a new gateway"))
        return out, problems
    if kind not in KINDS:
        problems.append(Problem("kind", f"one of {', '.join(KINDS)}"))
        return out, problems
    if current is None:
        out["kind"] = kind
    if kind == KIND_REFERENCE:
        for key in ("adapter", "adapter_secret"):
            if data.get(key) not in (None, {}, ""):
                problems.append(Problem(key, "only for gateways of another kind than reference"))
        return out, problems
    if "adapter" in data or not partial:
        adapter = data.get("adapter")
        for p in target_problems(adapter):
            problems.append(Problem(p["path"], p["message"]))
        if isinstance(adapter, dict) and not problems:
            out["adapter"] = adapter
    if "adapter_secret" in data or not partial:
        secret = data.get("adapter_secret")
        if not isinstance(secret, str) or not secret.strip():
            problems.append(Problem("adapter_secret", "required: the proxy's master key (for the read-back)"))
        else:
            out["adapter_secret_encrypted"] = encrypt_secret(secret.strip())
    if not partial and not data.get("push_url"):
        problems.append(Problem("push_url", "required: the LiteLLM agent's /config URL"))
    return out, problems


def target_of(gateway: Gateway) -> dict[str, Any]:
    return {**(gateway.adapter or {}), "tier": gateway.tier}


def compile_for(gateway: Gateway, bundle: dict[str, Any]) -> Any:
    return compile_litellm(bundle, target_of(gateway))


def not_enforced(gateway: Gateway, bundle: dict[str, Any]) -> list[dict[str, str]]:
    """What this gateway's kind does not enforce of `bundle` ([] for the reference gateway)."""
    if gateway.kind != KIND_LITELLM:
        return []
    return compile_for(gateway, bundle).not_enforced


def prepare(gateway: Gateway, bundle: dict[str, Any], revision: int) -> Prepared | PushOutcome:
    """The push for `bundle` to `gateway`, or the outcome when it cannot be sent (a NACK)."""
    if gateway.kind != KIND_LITELLM:
        return Prepared(bundle_bytes(bundle), push_bundle)
    compiled = compile_for(gateway, bundle)
    if not compiled.ok:
        error = "; ".join(f"{p['path']}: {p['message']}" for p in compiled.problems)
        return PushOutcome("nack", None, f"does not compile to a LiteLLM config: {error}"[:2000])
    try:
        key = decrypt_secret(gateway.adapter_secret_encrypted)
    except SecretUnreadable:
        return PushOutcome("retry", None, "the proxy's master key is unreadable: set it again")
    body = bundle_bytes({"revision": revision, "litellm_config": compiled.config})
    return Prepared(
        body,
        push_litellm,
        {"proxy_url": gateway.adapter["proxy_url"], "proxy_key": key, "expected": compiled.config},
    )


def push_litellm(
    *,
    url: str,
    body: bytes,
    secret: str,
    revision: int,
    proxy_url: str,
    proxy_key: str,
    expected: dict[str, Any],
    previous_secret: str | None = None,
) -> PushOutcome:
    """Push to the agent, then confirm by reading the proxy back (no Django: runs in threads)."""
    outcome = push_bundle(
        url=url,
        body=body,
        secret=secret,
        revision=revision,
        previous_secret=previous_secret,
        read_timeout_s=LITELLM_PUSH_READ_TIMEOUT_S,
    )
    if outcome.kind != "ack":
        return outcome
    try:
        running = read_back(proxy_url, proxy_key, timeout_s=READ_BACK_TIMEOUT_S)
    except (requests.RequestException, ValueError) as exc:
        return PushOutcome("retry", None, f"agent acknowledged, read-back failed: {exc.__class__.__name__}")
    mismatches = readback_mismatches(expected, running)
    if mismatches:
        return PushOutcome(
            "retry", None, "agent acknowledged, read-back differs: " + "; ".join(mismatches[:3])
        )
    return outcome


def litellm_view(gateway: Gateway, *, live: bool = True, read_back_timeout_s: float = 5) -> dict[str, Any]:
    """The compiled config of the desired revision, what the proxy runs (read back), and the diff."""
    revision = gateway.revisions.filter(revision=gateway.desired_revision).first()
    view: dict[str, Any] = {
        "kind": gateway.kind,
        "desired_revision": gateway.desired_revision,
        "applied_revision": gateway.applied_revision,
        "compiled": None,
        "not_enforced": [],
        "problems": [],
        "running": None,
        "read_back_error": None,
        "diff": "",
        "in_sync": None,
    }
    if gateway.kind != KIND_LITELLM:
        return view
    if revision is not None:
        compiled = compile_for(gateway, revision.bundle)
        view.update(
            compiled=compiled.config or None, not_enforced=compiled.not_enforced, problems=compiled.problems
        )
    if not live:
        return view
    try:
        running = read_back(
            gateway.adapter["proxy_url"], decrypt_secret(gateway.adapter_secret_encrypted), timeout_s=5
        )
    except (requests.RequestException, ValueError, KeyError, SecretUnreadable) as exc:
        view["read_back_error"] = f"{exc.__class__.__name__}: {str(exc)[:200]}"
        return view
    view["running"] = running
    if view["compiled"]:
        view["compiled_text"] = pretty(view["compiled"])
        view["diff"] = config_diff(view["compiled"], running)
        view["in_sync"] = not readback_mismatches(view["compiled"], running)
    return view


def pretty(config: Any) -> str:
    return json.dumps(config, indent=2, sort_keys=True) if config is not None else ""
