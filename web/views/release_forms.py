"""Create a release in the browser, with a preview of its waves and of its gates, and submit it.

The form is the body of `POST /api/v1/releases/`. Preview calls `release_preview` (the service
behind `POST /api/v1/releases/preview/`) with `predict_gates`: each wave's effective gateway count
on the gateways the target matches now, and what the submission gates would answer now (the same
gate functions a submission runs; nothing stored). Create calls `release_create` (a draft, audited)
and Submit on the release page calls `release_submit`, as the API does. Operators only.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from controlplane.errors import DomainError
from controlplane.roles import OPERATOR
from routing.models.documents import APPROVED, CacheConfigVersion, RoutingPolicyVersion
from routing.models.releases import RELEASE_KINDS
from routing.releases import lifecycle, machine
from routing.releases import selectors as release_selectors
from slo.models import Service
from slo.spec import TIERS
from web import presenters
from web.access import role_required
from web.authoring import FormErrors, compact, number, text_or_none

WAVE_ROWS = 5
FIELDS = {
    "service": "service",
    "kind": "kind",
    "title": "title",
    "reason": "reason",
    "routing_policy_version": "routing_policy_version",
    "cache_config_version": "cache_config_version",
    "model_version": "model_version",
    "target": "target_tier",
    "target.tier": "target_tier",
    "target.region": "target_region",
    "confirm_wave_sizes": "confirm_wave_sizes",
    "waves": "wave_1_percent",
    **{f"waves[{i}]": f"wave_{i + 1}_percent" for i in range(WAVE_ROWS)},
    **{f"waves[{i}].percent": f"wave_{i + 1}_percent" for i in range(WAVE_ROWS)},
    **{f"waves[{i}].bake_s": f"wave_{i + 1}_bake_s" for i in range(WAVE_ROWS)},
}


def release_body(post: Any) -> dict[str, Any]:
    """The posted form as the API's create body. Empty wave rows are left out (all empty: the
    default plan); a box that is not a number goes as typed, for the service to name."""
    waves = []
    for i in range(1, WAVE_ROWS + 1):
        percent, bake = number(post.get(f"wave_{i}_percent")), number(post.get(f"wave_{i}_bake_s"))
        if percent is None and bake is None:
            continue
        wave = compact({"percent": float(percent) if isinstance(percent, int) else percent, "bake_s": bake})
        waves.append(wave)
    target = compact(
        {"tier": text_or_none(post.get("target_tier")), "region": text_or_none(post.get("target_region"))}
    )
    return compact(
        {
            "service": text_or_none(post.get("service")),
            "kind": text_or_none(post.get("kind")) or "normal",
            "title": (post.get("title") or "").strip(),
            "reason": (post.get("reason") or "").strip(),
            "routing_policy_version": number(post.get("routing_policy_version")),
            "cache_config_version": number(post.get("cache_config_version")),
            "model_version": number(post.get("model_version")),
            "target": target or None,
            "waves": waves or None,
            "confirm_wave_sizes": post.get("confirm_wave_sizes") == "on",
        }
    )


def _initial(get: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "service": get.get("service", ""),
        "kind": "normal",
        "routing_policy_version": get.get("routing_policy_version", ""),
        "cache_config_version": get.get("cache_config_version", ""),
    }
    for i, (percent, bake_s) in enumerate(machine.DEFAULT_WAVES, start=1):
        values[f"wave_{i}_percent"] = f"{percent:g}"
        values[f"wave_{i}_bake_s"] = str(bake_s)
    return values


def _approved(model: Any, service: str) -> str:
    numbers = list(
        model.objects.filter(line__service__name=service, state=APPROVED)
        .order_by("-version")
        .values_list("version", flat=True)[:10]
    )
    return ", ".join(f"v{n}" for n in numbers) or "none"


def _fields(values: dict[str, Any], errors: FormErrors) -> dict[str, Any]:
    def f(name: str, label: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "label": label,
            "value": values.get(name, ""),
            "errors": errors.at(name),
            **extra,
        }

    service = values.get("service") or ""
    services = list(Service.objects.order_by("name").values_list("name", flat=True))
    models = [("", "unchanged")]
    if service:
        models += [
            (str(pk), f"{name} {version}")
            for pk, name, version in release_selectors.model_version_queryset()
            .filter(service__name=service)
            .order_by("-id")
            .values_list("pk", "name", "version")[:50]
        ]
    help_for = (lambda m: f"approved versions of {service}: {_approved(m, service)}") if service else None
    return {
        "what": [
            f("service", "Service", required=True, choices=[("", "—"), *[(s, s) for s in services]]),
            f(
                "kind",
                "Kind",
                choices=[(k, k) for k in RELEASE_KINDS],
                help="hotfix and rollback need a reason",
            ),
            f("title", "Title"),
            f("reason", "Reason", rows=2, wide=True),
            f(
                "routing_policy_version",
                "Routing policy version",
                inputmode="numeric",
                help=help_for(RoutingPolicyVersion) if help_for else "a version number; empty: unchanged",
            ),
            f(
                "cache_config_version",
                "Cache config version",
                inputmode="numeric",
                help=help_for(CacheConfigVersion) if help_for else "a version number; empty: unchanged",
            ),
            f("model_version", "Model version", choices=models),
        ],
        "target": [
            f("target_tier", "Tier", choices=[("", "every tier"), *[(t, t) for t in TIERS]]),
            f("target_region", "Region", help="empty: every region"),
        ],
        "waves": [
            {
                "number": i,
                "percent": f(f"wave_{i}_percent", f"Wave {i}: cumulative share (%)", inputmode="decimal"),
                "bake": f(f"wave_{i}_bake_s", f"Wave {i}: bake (s)", inputmode="numeric"),
            }
            for i in range(1, WAVE_ROWS + 1)
        ],
    }


def _gate_rows(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "gate": g["gate"],
            "title": presenters.gate_title(g["gate"]),
            "outcome": g["outcome"],
            "view": presenters.gate_evidence(g["gate"], g["outcome"], g["evidence"]),
        }
        for g in gates
    ]


@login_required
@role_required(OPERATOR)
def release_new(request: HttpRequest) -> HttpResponse:
    """A draft release: Preview (waves and gate predictions, nothing stored) or Create."""
    errors = FormErrors(FIELDS)
    preview = None
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in request.POST if key != "csrfmiddlewaretoken"}
        values["confirm_wave_sizes"] = request.POST.get("confirm_wave_sizes") == "on"
        body = release_body(request.POST)
        try:
            if request.POST.get("action") == "create":
                release = lifecycle.release_create(actor=request.user, data=body)
                messages.success(
                    request,
                    f"Draft release {release.pk} created. Submit it to run its gates and fix its waves.",
                )
                return redirect("dashboard:release", pk=release.pk)
            preview = lifecycle.release_preview(data=body, predict_gates=True)
            preview["gate_rows"] = _gate_rows(preview.get("gates", []))
            if preview["problems"]:
                errors.add(DomainError("the first wave needs a confirmation", problems=preview["problems"]))
        except DomainError as exc:
            errors.add(exc)
    else:
        values = _initial(request.GET)
    return render(
        request,
        "authoring/release_form.html",
        {
            "nav": "releases",
            "values": values,
            "errors": errors,
            "fields": _fields(values, errors),
            "preview": preview,
        },
    )


@login_required
@require_POST
@role_required(OPERATOR)
def release_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """draft -> pending approval (or paused), as `POST /api/v1/releases/<id>/submit/`."""
    from web.views.documents import problem_lines

    try:
        lifecycle.release_submit(
            actor=request.user,
            release_id=pk,
            confirm_wave_sizes=request.POST.get("confirm_wave_sizes") == "on",
        )
        messages.success(request, f"Release {pk} submitted: its gates ran, and its waves are fixed.")
    except DomainError as exc:
        details = "; ".join(
            f"{p['path']}: {p['message']}" if p["path"] else p["message"]
            for p in problem_lines(exc)
            if p["message"] != str(exc)
        )
        messages.error(request, f"Not submitted: {exc}{': ' + details if details else ''}")
    return redirect("dashboard:release", pk=pk)
