"""Dashboard pages of the routing app: routing policies and cache configs, the fleet, releases.

Reads go through `routing.documents.selectors`, `routing.fleet.selectors` and the release
selectors; the release buttons call `routing.releases.lifecycle` (which enforce every rule again:
a hidden button is a courtesy, not the check). Explain and simulate are reads, so their forms are
GET forms whose answers can be bookmarked and shared.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, F, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlplane.errors import DomainError, NotFound, ValidationFailed
from controlplane.lib.charts import duration
from controlplane.roles import APPROVER, OPERATOR, VIEWER
from routing.documents import selectors as documents
from routing.documents.kinds import CACHE_CONFIG, ROUTING_POLICY, Kind
from routing.fleet.health import DEFAULT_STALE_AFTER_S, HEALTH_STATES
from routing.fleet.selectors import fleet_summary, gateway_health_of, gateway_queryset
from routing.releases import machine
from routing.releases import selectors as release_selectors
from slo.diff import diff_documents
from slo.spec import TIERS
from web.access import role_required

KINDS = {"routing-policies": ROUTING_POLICY, "cache-configs": CACHE_CONFIG}
VERSIONS_SHOWN = 50
MAX_FORM_JSON = 20_000  # characters of JSON a form may send: explain contexts are small


def _problems(exc: Exception) -> list[dict[str, str]]:
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
        raise ValidationFailed("invalid input", problems=[{"path": path, "message": f"not JSON: {exc.msg} "
                                                            f"(line {exc.lineno}, column {exc.colno})"}]) from None


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
        rows.append({
            "line": line, "current": version,
            "warnings": len((version.validation or {}).get("warnings", [])) if version else 0,
            "running": sorted(running.items(), reverse=True),
        })
    return rows


@login_required
@role_required(VIEWER)
def policies(request: HttpRequest) -> HttpResponse:
    """Every service's routing policy and cache config line, with what the fleet runs."""
    return render(request, "routing/policies.html", {
        "nav": "policies",
        "sections": [
            {"slug": "routing-policies", "title": "Routing policies", "rows": _line_rows(ROUTING_POLICY)},
            {"slug": "cache-configs", "title": "Cache configs", "rows": _line_rows(CACHE_CONFIG)},
        ],
    })


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
            diff = {"from": diff_from, "to": diff_to, "changes": diff_documents(specs[diff_from], specs[diff_to])}
        else:
            diff = {"from": diff_from, "to": diff_to, "missing": True, "changes": []}

    context: dict[str, Any] = {
        "nav": "policies", "kind": kind, "kind_slug": kind_slug, "line": line, "versions": versions,
        "numbers": numbers, "active": active, "selected": selected, "diff": diff,
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
    out: dict[str, Any] = {"explain_text": text or '{"confidence": 0.42, "payload_kb": 120}', "explain": None,
                           "explain_errors": []}
    if "explain" in request.GET:
        try:
            context = _json_field(text, "context")
            if not isinstance(context, dict):
                raise ValidationFailed("invalid input", problems=[{"path": "context", "message": "must be an object"}])
            out["explain"] = documents.routing_policy_explain(
                line=line, version=_int(request.GET.get("explain_version")), context=context)
        except (ValidationFailed, NotFound) as exc:
            out["explain_errors"] = _problems(exc)
    return out


def _simulate(request: HttpRequest, line: Any, active: dict[int, int]) -> dict[str, Any]:
    """The Simulate form. By default it replays recorded traffic with the release gate's defaults
    (`routing_policy_simulate`), so it shows the figure the gate saw; a distribution is a what-if."""
    from routing.documents.simulation import RECORDED_REQUESTS, routing_policy_simulate

    text = request.GET.get("distribution", "")
    traffic = "distribution" if request.GET.get("traffic") == "distribution" else "recorded"
    out: dict[str, Any] = {
        "simulate_text": text or '{"confidence": {"uniform": [0, 1]}, "payload_bytes": {"int_uniform": [2000, 60000]}}',
        "simulation": None, "simulate_errors": [], "simulate_n": _int(request.GET.get("n"), RECORDED_REQUESTS),
        "simulate_seed": _int(request.GET.get("seed"), 0), "baseline_hint": max(active, key=active.get) if active else None,
        "simulate_traffic": traffic, "simulate_tier": request.GET.get("tier", ""),
        "simulate_region": request.GET.get("region", ""), "simulate_tiers": TIERS,
    }
    if "simulate" in request.GET:
        try:
            body: dict[str, Any] = {"candidate_version": _int(request.GET.get("candidate"), line.current_version)}
            if traffic == "distribution":
                distribution = _json_field(text, "distribution") if text else {}
                body["generate"] = {"n": out["simulate_n"], "seed": out["simulate_seed"], "distribution": distribution}
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
            out["simulate_errors"] = _problems(exc)
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
        ("requests", "requests simulated", 0), ("p95_ms", "p95 latency (ms)", 1),
        ("failed_ratio", "failed share", 4), ("bad_ratio", "bad share (SLO)", 4),
        ("budget_burn", "budget burn (×)", 2), ("cost_per_1000_usd", "cost per 1,000 (USD)", 4),
        ("attempts_per_request", "attempts per request", 3),
    ):
        a, b = base.get(key), cand.get(key)
        shift = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
        rows.append({"label": label, "baseline": _number(a, digits), "candidate": _number(b, digits),
                     "shift": ("+" if shift and shift > 0 else "") + _number(shift, digits) if shift is not None else "—"})
    mix_a, mix_b = base.get("route_mix") or {}, cand.get("route_mix") or {}
    for route in sorted(set(mix_a) | set(mix_b)):
        a, b = mix_a.get(route, 0.0), mix_b.get(route, 0.0)
        rows.append({"label": f"route mix: {route}", "baseline": f"{a * 100:.1f}%", "candidate": f"{b * 100:.1f}%",
                     "shift": f"{(b - a) * 100:+.1f} pts"})
    rules_a, rules_b = base.get("rule_mix") or {}, cand.get("rule_mix") or {}
    for rule in sorted(set(rules_a) | set(rules_b)):
        a, b = rules_a.get(rule, 0.0), rules_b.get(rule, 0.0)
        rows.append({"label": f"rule matched: {rule}", "baseline": f"{a * 100:.1f}%", "candidate": f"{b * 100:.1f}%",
                     "shift": f"{(b - a) * 100:+.1f} pts"})
    return rows


def _explain_key(request: HttpRequest, line: Any) -> dict[str, Any]:
    text = request.GET.get("request", "")
    out: dict[str, Any] = {"key_text": text or '{"model": "shelf-v3", "image_sha256": "abc123"}',
                           "key_result": None, "key_errors": []}
    if "explain_key" in request.GET:
        try:
            fields = _json_field(text, "request")
            if not isinstance(fields, dict):
                raise ValidationFailed("invalid input", problems=[{"path": "request", "message": "must be an object"}])
            layer = request.GET.get("layer") or None
            out["key_result"] = documents.cache_config_explain_key(
                line=line, version=_int(request.GET.get("key_version")), layer=layer, request=fields)
        except (ValidationFailed, NotFound) as exc:
            out["key_errors"] = _problems(exc)
    return out


# --- fleet -------------------------------------------------------------------------------------


def health_q(health: str, *, now: datetime, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Q:
    """`routing.fleet.health.gateway_health` as a query filter, so the fleet page can filter and
    paginate in SQL (tests check both agree)."""
    cutoff = now - timedelta(seconds=stale_after_s)
    seen = Q(last_heartbeat_at__isnull=False, last_heartbeat_at__gte=cutoff)
    runs_desired = Q(desired_revision__isnull=True) | Q(applied_revision=F("desired_revision"))
    nacked_desired = Q(last_nack_revision=F("desired_revision"))
    if health == "pending":
        return Q(last_heartbeat_at__isnull=True, desired_revision__isnull=True)
    if health == "stale":
        return Q(last_heartbeat_at__isnull=True, desired_revision__isnull=False) | Q(last_heartbeat_at__lt=cutoff)
    if health == "healthy":
        return seen & runs_desired
    # below: seen, something desired and not what it runs (applied may be NULL)
    off = seen & Q(desired_revision__isnull=False) & ~Q(applied_revision=F("desired_revision"), applied_revision__isnull=False)
    if health == "nacked":
        return off & nacked_desired
    if health == "drifted":
        return off & (Q(last_nack_revision__isnull=True) | ~Q(last_nack_revision=F("desired_revision")))
    raise ValueError(f"unknown health {health!r}")


def _rotation_state(gateway: Any, now: Any) -> dict[str, Any] | None:
    """A credential rotation still in its grace window: until when, and whether the old token is
    still used (so the operator knows the gateway has switched before it is cut off)."""
    ends = [t for t in (gateway.previous_token_expires_at, gateway.previous_signing_secret_expires_at)
            if t is not None and t > now]
    if not ends:
        return None
    used = gateway.previous_token_last_used_at
    token_window = gateway.previous_token_expires_at is not None and gateway.previous_token_expires_at > now
    return {
        "until": max(ends),
        "old_token": (f"old token used {duration((now - used).total_seconds())} ago" if used
                      else "old token not used since") if token_window else "",
        "switched": token_window and used is None,
    }


@login_required
@role_required(VIEWER)
def fleet(request: HttpRequest) -> HttpResponse:
    """Gateways by tier and region: desired vs applied revision, heartbeat age, NACKs."""
    now = timezone.now()
    gateways = gateway_queryset().order_by("tier", "region", "name")
    filters = {
        "service": request.GET.get("service", "")[:63], "tier": request.GET.get("tier", ""),
        "region": request.GET.get("region", "")[:63], "health": request.GET.get("health", ""),
    }
    if filters["service"]:
        gateways = gateways.filter(service__name=filters["service"])
    if filters["tier"] in TIERS:
        gateways = gateways.filter(tier=filters["tier"])
    else:
        filters["tier"] = ""
    if filters["region"]:
        gateways = gateways.filter(region=filters["region"])
    if filters["health"] in HEALTH_STATES:
        gateways = gateways.filter(health_q(filters["health"], now=now))
    else:
        filters["health"] = ""
    summary = fleet_summary(gateways=gateways, now=now)
    page = Paginator(gateways, 100).get_page(request.GET.get("page"))
    rows = []
    for gateway in page:
        age = (now - gateway.last_heartbeat_at).total_seconds() if gateway.last_heartbeat_at else None
        rows.append({
            "gateway": gateway, "health": gateway_health_of(gateway, now=now),
            "heartbeat_age": duration(age) if age is not None else "never",
            "in_sync": gateway.desired_revision is None or gateway.desired_revision == gateway.applied_revision,
            "rotation": _rotation_state(gateway, now),
        })
    query = request.GET.copy()
    query.pop("page", None)
    all_gateways = gateway_queryset().order_by()
    return render(request, "routing/fleet.html", {
        "nav": "fleet", "summary": summary, "page": page, "rows": rows, "filters": filters,
        "query": query.urlencode(), "tiers": TIERS, "healths": HEALTH_STATES,
        "regions": sorted(r for r in all_gateways.values_list("region", flat=True).distinct() if r),
        "service_names": sorted(all_gateways.values_list("service__name", flat=True).distinct()),
    })


# --- releases ----------------------------------------------------------------------------------

# The "open" filter: every state a release can still leave (the machine's non-final states).
OPEN_STATES = tuple(state for state in machine.STATES if state not in machine.FINAL_STATES)


def _accepts(release: Any, event: str) -> bool:
    """Whether the state machine takes `event` from the release's state (a paused release resumes
    only to where it paused from)."""
    return event in machine.allowed_events(release.state, paused_from=release.paused_from or None)


@login_required
@role_required(VIEWER)
def releases(request: HttpRequest) -> HttpResponse:
    """Releases, newest first, filterable by state and service."""
    queryset = release_selectors.release_queryset().annotate(
        approvals_given=Count("approvals", filter=Q(approvals__decision="approve")),
    ).order_by("-created_at", "-id")
    state = request.GET.get("state", "")
    if state == "open":
        queryset = queryset.filter(state__in=OPEN_STATES)
    elif state in machine.STATES:
        queryset = queryset.filter(state=state)
    else:
        state = ""
    service = request.GET.get("service", "")[:63]
    if service:
        queryset = queryset.filter(service__name=service)
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "routing/releases.html", {
        "nav": "releases", "page": page, "state": state, "service": service, "states": machine.STATES,
        "query": query.urlencode(),
        "service_names": sorted(release_selectors.release_queryset().order_by().values_list("service__name", flat=True).distinct()),
    })


def _release_or_404(pk: int) -> Any:
    release = (
        release_selectors.release_queryset().select_related(
            "author", "routing_policy_version__line", "cache_config_version__line")
        .filter(pk=pk).first()
    )
    if release is None:
        raise Http404("no such release")
    return release


def release_actions(release: Any, user: Any) -> dict[str, Any]:
    """Which buttons a user sees. The services enforce the same rules (and more, e.g. the budget
    freeze); this only keeps buttons off pages where they could never succeed."""
    from controlplane.roles import has_role

    wrote = release_selectors.content_authored_by(release=release, user=user)
    is_author = (release.author_id is not None and release.author_id == user.pk) or bool(wrote)
    decided = release.approvals.filter(approver_id=user.pk).exists() if user.is_authenticated else False
    can_decide = (has_role(user, APPROVER) and _accepts(release, machine.APPROVE) and _accepts(release, machine.REJECT)
                  and not is_author and not decided)
    touched = release.targets.filter(touched_at__isnull=False).exists()
    return {
        "can_approve": can_decide,
        "can_reject": can_decide,
        # a paused release waits for a person: an approver other than its author goes on...
        "can_resume": has_role(user, APPROVER) and _accepts(release, machine.RESUME) and not is_author,
        # ...or an operator stops it, as long as no gateway runs it (then it is rolled back)
        "can_cancel": has_role(user, OPERATOR) and _accepts(release, machine.CANCEL) and not touched,
        "can_rollback": has_role(user, OPERATOR) and _accepts(release, machine.ROLLBACK) and (
            # a paused release that touched no gateway is cancelled, not rolled back
            release.state != machine.PAUSED or touched),
        "is_author": is_author,
        "wrote_content": wrote,
        "is_approver": has_role(user, APPROVER),
        "already_decided": decided,
    }


@login_required
@role_required(VIEWER)
def release_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One release: what it changes, gate evidence, approvals, wave progress and rollbacks."""
    release = _release_or_404(pk)
    targets = list(release.targets.order_by("wave").values("wave", "touched_at", "gateway_id"))
    waves = []
    for index, wave in enumerate(release.waves or []):
        in_wave = [t for t in targets if t["wave"] == index]
        touched = sum(1 for t in in_wave if t["touched_at"] is not None)
        if index < release.current_wave or release.state == machine.COMPLETED:
            status = "done"
        elif index == release.current_wave:
            status = release.wave_phase or "current"
        else:
            status = "waiting"
        waves.append({
            "number": index + 1, "percent": wave.get("percent"), "requested": wave.get("requested_percent"),
            "bake": duration(wave.get("bake_s")),
            "gateways": len(in_wave), "touched": touched, "status": status,
            "progress": round(100 * touched / len(in_wave)) if in_wave else 0,
        })
    approvals = list(release.approvals.order_by("at", "id"))
    approved = sum(1 for a in approvals if a.decision == "approve")
    return render(request, "routing/release_detail.html", {
        "nav": "releases", "release": release, "waves": waves,
        "gates": list(release.gate_results.order_by("-at", "-id")[:200]),
        "approvals": approvals, "approved": approved,
        "transitions": list(release.transitions.order_by("at", "id")),
        "rollbacks": list(release.rollbacks.order_by("-at", "-id")),
        "alerts_received": list(release.alert_receipts.order_by("-received_at", "-id")[:50]),
        "wave_preview": release_selectors.wave_preview(release=release, confirmed_for=release.wave_sizes_confirmed_for)
        if release.state == machine.DRAFT else None,
        "actions": release_actions(release, request.user),
    })


_ACTION_DONE = {
    "approve": "You approved release {pk}.",
    "reject": "You rejected release {pk}.",
    "resume": "You resumed release {pk}: your reason is recorded as an override.",
    "cancel": "You cancelled release {pk}.",
    "rollback": "Rollback of release {pk} started: rollbacks are delivered first.",
}


def _release_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Call the release service for a button; its refusal becomes a message on the page."""
    from django.contrib import messages
    from django.shortcuts import redirect

    from controlplane.errors import DomainError
    from routing.releases import lifecycle as release_services

    release = _release_or_404(pk)
    comment = (request.POST.get("comment") or "").strip()[:2000]
    # approvals take a comment, the other actions a reason: the same text box either way
    argument = "comment" if action in ("approve", "reject") else "reason"
    try:
        getattr(release_services, f"release_{action}")(
            actor=request.user, release_id=release.pk, **{argument: comment})
        messages.success(request, _ACTION_DONE[action].format(pk=release.pk))
    except DomainError as exc:
        details = "; ".join(p["message"] for p in _problems(exc) if p["message"] != str(exc))
        messages.error(request, f"{exc}{': ' + details if details else ''}")
    return redirect("dashboard:release", pk=release.pk)


def _release_action_view(action: str, role: str) -> Any:
    """A POST-only button view for one release action, for one role (the service checks again)."""

    @login_required
    @require_POST
    @role_required(role)
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        return _release_action(request, pk, action)

    view.__name__ = view.__qualname__ = f"release_{action}"
    return view


release_approve = _release_action_view("approve", APPROVER)
release_reject = _release_action_view("reject", APPROVER)
release_resume = _release_action_view("resume", APPROVER)  # never the author: the service refuses
release_rollback = _release_action_view("rollback", OPERATOR)
release_cancel = _release_action_view("cancel", OPERATOR)
