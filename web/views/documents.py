"""Dashboard pages of routing policies and cache configs: lines, versions, diffs, explain,
simulate and explain-key.

Reads go through `routing.documents.selectors`. Explain and simulate are reads, so their forms are
GET forms whose answers can be bookmarked and shared.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.errors import DomainError, NotFound, ValidationFailed
from controlplane.roles import VIEWER
from routing.documents import selectors as documents
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY, Kind
from slo.diff import diff_documents
from slo.spec import TIERS
from web.access import role_required

KINDS = {"routing-policies": ROUTING_POLICY, "cache-configs": CACHE_CONFIG}
VERSIONS_SHOWN = 50
MAX_FORM_JSON = 20_000  # characters of JSON a form may send: explain contexts are small


def problem_lines(exc: Exception) -> list[dict[str, str]]:
    """A domain error as lines for the page: every problem with its path."""
    problems = getattr(exc, "problems", None) or []
    out = []
    for problem in problems:
        item = problem.as_dict() if hasattr(problem, "as_dict") else dict(problem)
        out.append({"path": str(item.get("path", "")), "message": str(item.get("message", ""))})
    return out or [{"path": "", "message": str(exc)}]


def _json_field(text: str, path: str) -> Any:
    if len(text) > MAX_FORM_JSON:
        raise ValidationFailed("invalid input", problems=[{"path": path, "message": "too long"}])
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            "invalid input",
            problems=[
                {"path": path, "message": f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"}
            ],
        ) from None


def _int(value: str | None, default: int | None = None) -> int | None:
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


# --- routing policies and cache configs ----------------------------------------------------------


def _line_rows(kind: Kind) -> list[dict[str, Any]]:
    lines = documents.line_list(kind=kind)
    current = documents.current_versions(kind=kind, line_ids=[line.pk for line in lines])
    active = documents.active_by_line(kind=kind, lines=lines)
    rows = []
    for line in lines:
        version = current.get(line.pk)
        running = {number: n for (line_id, number), n in active.items() if line_id == line.pk}
        rows.append(
            {
                "line": line,
                "current": version,
                "warnings": len((version.validation or {}).get("warnings", [])) if version else 0,
                "running": sorted(running.items(), reverse=True),
            }
        )
    return rows


@login_required
@role_required(VIEWER)
def policies(request: HttpRequest) -> HttpResponse:
    """Every service's routing policy and cache config line, with what the fleet runs."""
    return render(
        request,
        "routing/policies.html",
        {
            "nav": "policies",
            "sections": [
                {"slug": "routing-policies", "title": "Routing policies", "rows": _line_rows(ROUTING_POLICY)},
                {"slug": "cache-configs", "title": "Cache configs", "rows": _line_rows(CACHE_CONFIG)},
            ],
        },
    )


@login_required
@role_required(VIEWER)
def document_detail(request: HttpRequest, kind_slug: str, pk: int) -> HttpResponse:
    """One document line: versions, a diff between two of them, the validation of one, and the
    explain / simulate (routing policy) or explain-key (cache config) forms."""
    kind = KINDS.get(kind_slug)
    if kind is None:
        raise Http404("no such document kind")
    try:
        line = documents.line_get(kind=kind, ref=str(pk))
    except NotFound:
        raise Http404("no such document") from None
    versions = documents.version_list(kind=kind, line=line, limit=VERSIONS_SHOWN)
    numbers = [v.version for v in versions]
    active = documents.line_active_versions(kind=kind, line=line)
    selected_number = _int(request.GET.get("v"), line.current_version)
    selected = next((v for v in versions if v.version == selected_number), None)
    if selected is None:
        try:
            selected = documents.version_get(kind=kind, line=line, version=selected_number)
        except NotFound:
            selected = versions[0] if versions else None

    # the diff: ?from=&to=, default the previous version against the newest
    diff_to = _int(request.GET.get("to"), line.current_version)
    diff_from = _int(request.GET.get("from"), (diff_to or 1) - 1)
    diff = None
    if diff_from and diff_to and diff_from != diff_to:
        specs = documents.version_specs(kind=kind, line_id=line.pk, versions=[diff_from, diff_to])
        if diff_from in specs and diff_to in specs:
            diff = {
                "from": diff_from,
                "to": diff_to,
                "changes": diff_documents(specs[diff_from], specs[diff_to]),
            }
        else:
            diff = {"from": diff_from, "to": diff_to, "missing": True, "changes": []}

    context: dict[str, Any] = {
        "nav": "policies",
        "kind": kind,
        "kind_slug": kind_slug,
        "line": line,
        "versions": versions,
        "numbers": numbers,
        "active": active,
        "selected": selected,
        "diff": diff,
        "selected_json": json.dumps(selected.document, indent=2, sort_keys=True) if selected else "",
    }
    if kind is ROUTING_POLICY:
        context.update(_explain(request, line))
        context.update(_simulate(request, line, active))
    else:
        context.update(_explain_key(request, line))
    return render(request, "routing/document_detail.html", context)


def _explain(request: HttpRequest, line: Any) -> dict[str, Any]:
    text = request.GET.get("context", "")
    out: dict[str, Any] = {
        "explain_text": text or '{"confidence": 0.42, "payload_kb": 120}',
        "explain": None,
        "explain_errors": [],
    }
    if "explain" in request.GET:
        try:
            context = _json_field(text, "context")
            if not isinstance(context, dict):
                raise ValidationFailed(
                    "invalid input", problems=[{"path": "context", "message": "must be an object"}]
                )
            out["explain"] = documents.routing_policy_explain(
                line=line, version=_int(request.GET.get("explain_version")), context=context
            )
        except (ValidationFailed, NotFound) as exc:
            out["explain_errors"] = problem_lines(exc)
    return out


def _simulate(request: HttpRequest, line: Any, active: dict[int, int]) -> dict[str, Any]:
    """The Simulate form. By default it replays recorded traffic with the release gate's defaults
    (`routing_policy_simulate`), so it shows the figure the gate saw; a distribution is a what-if."""
    from routing.documents.simulation import RECORDED_REQUESTS, routing_policy_simulate

    text = request.GET.get("distribution", "")
    traffic = "distribution" if request.GET.get("traffic") == "distribution" else "recorded"
    out: dict[str, Any] = {
        "simulate_text": text
        or '{"confidence": {"uniform": [0, 1]}, "payload_bytes": {"int_uniform": [2000, 60000]}}',
        "simulation": None,
        "simulate_errors": [],
        "simulate_n": _int(request.GET.get("n"), RECORDED_REQUESTS),
        "simulate_seed": _int(request.GET.get("seed"), 0),
        "baseline_hint": max(active, key=active.get) if active else None,
        "simulate_traffic": traffic,
        "simulate_tier": request.GET.get("tier", ""),
        "simulate_region": request.GET.get("region", ""),
        "simulate_tiers": TIERS,
    }
    if "simulate" in request.GET:
        try:
            body: dict[str, Any] = {
                "candidate_version": _int(request.GET.get("candidate"), line.current_version)
            }
            if traffic == "distribution":
                distribution = _json_field(text, "distribution") if text else {}
                body["generate"] = {
                    "n": out["simulate_n"],
                    "seed": out["simulate_seed"],
                    "distribution": distribution,
                }
            else:
                recorded: dict[str, Any] = {"n": out["simulate_n"], "seed": out["simulate_seed"]}
                for key in ("tier", "region"):
                    if out[f"simulate_{key}"]:
                        recorded[key] = out[f"simulate_{key}"]
                body["recorded"] = recorded
            baseline = _int(request.GET.get("baseline"))
            if baseline:
                body["baseline_version"] = baseline
            result = routing_policy_simulate(line=line, body=body)
            out["simulation"] = result
            out["simulation_rows"] = simulation_rows(result)
        except DomainError as exc:
            out["simulate_errors"] = problem_lines(exc)
    return out


def _number(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def simulation_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """Baseline vs candidate, one row per figure, with the shift (candidate - baseline)."""
    base, cand = result.get("baseline") or {}, result.get("candidate") or {}
    rows = []
    for key, label, digits in (
        ("requests", "requests simulated", 0),
        ("p95_ms", "p95 latency (ms)", 1),
        ("failed_ratio", "failed share", 4),
        ("bad_ratio", "bad share (SLO)", 4),
        ("budget_burn", "budget burn (×)", 2),
        ("cost_per_1000_usd", "cost per 1,000 (USD)", 4),
        ("attempts_per_request", "attempts per request", 3),
    ):
        a, b = base.get(key), cand.get(key)
        shift = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append(
            {
                "label": label,
                "baseline": _number(a, digits),
                "candidate": _number(b, digits),
                "shift": ("+" if shift and shift > 0 else "") + _number(shift, digits)
                if shift is not None
                else "—",
            }
        )
    mix_a, mix_b = base.get("route_mix") or {}, cand.get("route_mix") or {}
    for route in sorted(set(mix_a) | set(mix_b)):
        a, b = mix_a.get(route, 0.0), mix_b.get(route, 0.0)
        rows.append(
            {
                "label": f"route mix: {route}",
                "baseline": f"{a * 100:.1f}%",
                "candidate": f"{b * 100:.1f}%",
                "shift": f"{(b - a) * 100:+.1f} pts",
            }
        )
    rules_a, rules_b = base.get("rule_mix") or {}, cand.get("rule_mix") or {}
    for rule in sorted(set(rules_a) | set(rules_b)):
        a, b = rules_a.get(rule, 0.0), rules_b.get(rule, 0.0)
        rows.append(
            {
                "label": f"rule matched: {rule}",
                "baseline": f"{a * 100:.1f}%",
                "candidate": f"{b * 100:.1f}%",
                "shift": f"{(b - a) * 100:+.1f} pts",
            }
        )
    return rows


def _explain_key(request: HttpRequest, line: Any) -> dict[str, Any]:
    text = request.GET.get("request", "")
    out: dict[str, Any] = {
        "key_text": text or '{"model": "shelf-v3", "image_sha256": "abc123"}',
        "key_result": None,
        "key_errors": [],
    }
    if "explain_key" in request.GET:
        try:
            fields = _json_field(text, "request")
            if not isinstance(fields, dict):
                raise ValidationFailed(
                    "invalid input", problems=[{"path": "request", "message": "must be an object"}]
                )
            layer = request.GET.get("layer") or None
            out["key_result"] = documents.cache_config_explain_key(
                line=line, version=_int(request.GET.get("key_version")), layer=layer, request=fields
            )
        except (ValidationFailed, NotFound) as exc:
            out["key_errors"] = problem_lines(exc)
    return out
