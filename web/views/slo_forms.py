"""Create and edit an SLO in the browser.

The form is the API's SLO document in boxes: the view turns the posted text into the same body
`POST /api/v1/slos/` takes and calls the same service (`slo.services.slo_create` / `slo_update`),
which validates it (the pure `slo.spec`), stores a version and writes the audit event. A refusal
comes back as problems with paths, shown at the field that made each path; nothing is stored.
Operators write (the API's write role); everyone else gets 403.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from controlplane.errors import DomainError
from controlplane.roles import OPERATOR
from slo import services as slo_services
from slo.models import Service, Slo
from slo.spec import BUDGETING_METHODS, SERVICE_CLASSES, SLI_KINDS, TIERS
from web.access import role_required
from web.authoring import FormErrors, compact, text_or_none

# problem path (or a parent of it) -> the form field that made it
FIELDS = {
    "service": "service",
    "name": "name",
    "display_name": "display_name",
    "description": "description",
    "tier": "tier",
    "service_class": "service_class",
    "sli": "sli_kind",
    "sli.kind": "sli_kind",
    "sli.threshold_ms": "threshold_ms",
    "sli.max_age_s": "max_age_s",
    "sli.good_query": "good_query",
    "sli.bad_query": "bad_query",
    "sli.total_query": "total_query",
    "objective": "objective",
    "window": "window_type",
    "window.type": "window_type",
    "window.days": "window_days",
    "window.unit": "window_unit",
    "window.timezone": "window_timezone",
    "window.start": "window_start",
    "budgeting_method": "budgeting_method",
    "timeslice_target": "timeslice_target",
    "min_valid_events": "min_valid_events",
    "note": "note",
    "parent_version": "note",
}


def slo_body(post: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The posted form as the API's SLO document. Number boxes go as the text typed (the spec
    reads "99.5" as 99.5 and names anything else at its path); empty boxes are left out. On an
    edit, what the form does not show (alert tiers, labels) is kept from `base`."""
    sli = compact(
        {
            "kind": text_or_none(post.get("sli_kind")),
            "threshold_ms": text_or_none(post.get("threshold_ms")),
            "max_age_s": text_or_none(post.get("max_age_s")),
            "good_query": text_or_none(post.get("good_query")),
            "bad_query": text_or_none(post.get("bad_query")),
            "total_query": text_or_none(post.get("total_query")),
        }
    )
    window_type = text_or_none(post.get("window_type")) or "rolling"
    if window_type == "calendar":
        window = compact(
            {
                "type": "calendar",
                "unit": text_or_none(post.get("window_unit")),
                "timezone": text_or_none(post.get("window_timezone")),
                "start": text_or_none(post.get("window_start")),
            }
        )
    else:
        window = compact({"type": window_type, "days": text_or_none(post.get("window_days"))})
    body = {
        key: value
        for key, value in (base or {}).items()
        if key in ("alert_tiers", "labels")  # kept on an edit: the form does not show them
    }
    body.update(
        compact(
            {
                "service": text_or_none(post.get("service")),
                "name": text_or_none(post.get("name")),
                "display_name": (post.get("display_name") or "").strip(),
                "description": (post.get("description") or "").strip(),
                "tier": text_or_none(post.get("tier")),
                "service_class": text_or_none(post.get("service_class")),
                "sli": sli,
                "objective": text_or_none(post.get("objective")),
                "window": window,
                "budgeting_method": text_or_none(post.get("budgeting_method")),
                "timeslice_target": text_or_none(post.get("timeslice_target")),
                "min_valid_events": text_or_none(post.get("min_valid_events")),
            }
        )
    )
    return body


def _values_of(spec: dict[str, Any]) -> dict[str, Any]:
    """An SLO document as the form's box values (the inverse of `slo_body`)."""
    sli, window = spec.get("sli") or {}, spec.get("window") or {}

    def text(value: Any) -> str:
        return "" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))

    return {
        "service": spec.get("service", ""),
        "name": spec.get("name", ""),
        "display_name": spec.get("display_name", ""),
        "description": spec.get("description", ""),
        "tier": spec.get("tier") or "",
        "service_class": spec.get("service_class") or "",
        "sli_kind": sli.get("kind", "availability"),
        "threshold_ms": text(sli.get("threshold_ms")),
        "max_age_s": text(sli.get("max_age_s")),
        "good_query": sli.get("good_query") or "",
        "bad_query": sli.get("bad_query") or "",
        "total_query": sli.get("total_query") or "",
        "objective": text(spec.get("objective")),
        "window_type": window.get("type", "rolling"),
        "window_days": text(window.get("days")),
        "window_unit": window.get("unit", "month"),
        "window_timezone": window.get("timezone", "UTC"),
        "window_start": window.get("start") or "",
        "budgeting_method": spec.get("budgeting_method", "occurrences"),
        "timeslice_target": text(spec.get("timeslice_target")),
        "min_valid_events": text(spec.get("min_valid_events", 1)),
        "note": "",
    }


def _field(name: str, label: str, values: dict[str, Any], errors: FormErrors, **extra: Any) -> dict[str, Any]:
    return {"name": name, "label": label, "value": values.get(name, ""), "errors": errors.at(name), **extra}


def _fields(values: dict[str, Any], errors: FormErrors, *, creating: bool) -> dict[str, Any]:
    services = list(Service.objects.order_by("name").values_list("name", flat=True))
    f = _field
    return {
        "about": [
            *(
                [
                    f(
                        "service",
                        "Service",
                        values,
                        errors,
                        required=True,
                        choices=[("", "—"), *[(s, s) for s in services]],
                    )
                ]
                if creating
                else []
            ),
            f(
                "name",
                "Name",
                values,
                errors,
                required=creating,
                help="lower-case letters, digits and dashes",
            ),
            f("display_name", "Display name", values, errors),
            f(
                "tier",
                "Tier",
                values,
                errors,
                choices=[("", "every tier of the service"), *[(t, t) for t in TIERS]],
            ),
            f(
                "service_class",
                "Request class",
                values,
                errors,
                choices=[("", "every class"), *[(k, k) for k in SERVICE_CLASSES]],
            ),
            f("description", "Description", values, errors, rows=2, wide=True),
        ],
        "sli": [
            f("sli_kind", "SLI kind", values, errors, required=True, choices=[(k, k) for k in SLI_KINDS]),
            f(
                "threshold_ms",
                "Latency threshold (ms)",
                values,
                errors,
                inputmode="decimal",
                help="latency, ttft (time to first token) and tpot (time per output token) SLIs",
            ),
            f(
                "max_age_s",
                "Maximum data age (s)",
                values,
                errors,
                inputmode="decimal",
                help="freshness SLIs only",
            ),
            f(
                "good_query",
                "Good events query (PromQL)",
                values,
                errors,
                help="custom SLIs: this or the bad query",
            ),
            f("bad_query", "Bad events query (PromQL)", values, errors),
            f("total_query", "Total events query (PromQL)", values, errors, help="custom SLIs only"),
        ],
        "objective": [
            f(
                "objective",
                "Objective (%)",
                values,
                errors,
                required=True,
                inputmode="decimal",
                help="e.g. 99.5",
            ),
            f(
                "window_type",
                "Window",
                values,
                errors,
                choices=[("rolling", "rolling"), ("calendar", "calendar")],
            ),
            f("window_days", "Rolling window (days)", values, errors, inputmode="numeric"),
            f(
                "window_unit",
                "Calendar period",
                values,
                errors,
                choices=[("week", "week"), ("month", "month")],
            ),
            f("window_timezone", "Calendar time zone", values, errors, help="an IANA zone, e.g. UTC"),
            f(
                "window_start",
                "Calendar start (optional)",
                values,
                errors,
                help="local wall time YYYY-MM-DD HH:MM:SS",
            ),
            f(
                "budgeting_method",
                "Budgeting method",
                values,
                errors,
                choices=[(m, m) for m in BUDGETING_METHODS],
            ),
            f(
                "timeslice_target",
                "Timeslice target (0–1)",
                values,
                errors,
                inputmode="decimal",
                help="timeslices only",
            ),
            f("min_valid_events", "Minimum valid events", values, errors, inputmode="numeric"),
        ],
        "note": f(
            "note", "Change note", values, errors, wide=True, help="kept with the version and the audit event"
        ),
    }


def _render(
    request: HttpRequest, *, slo: Slo | None, values: dict[str, Any], errors: FormErrors
) -> HttpResponse:
    return render(
        request,
        "authoring/slo_form.html",
        {
            "nav": "overview",
            "slo": slo,
            "values": values,
            "errors": errors,
            "fields": _fields(values, errors, creating=slo is None),
        },
    )


@login_required
@role_required(OPERATOR)
def slo_new(request: HttpRequest) -> HttpResponse:
    """A new SLO: its version 1."""
    errors = FormErrors(FIELDS)
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in _values_of({})}
        try:
            slo = slo_services.slo_create(
                actor=request.user, data=slo_body(request.POST), note=(request.POST.get("note") or "").strip()
            )
        except DomainError as exc:
            errors.add(exc)
            return _render(request, slo=None, values=values, errors=errors)
        _warn(request, slo)
        messages.success(request, f"SLO {slo.service.name}/{slo.name} created (version 1).")
        return redirect("dashboard:slo", pk=slo.pk)
    values = _values_of(
        {"service": request.GET.get("service", ""), "window": {"type": "rolling", "days": 28}}
    )
    return _render(request, slo=None, values=values, errors=errors)


@login_required
@role_required(OPERATOR)
def slo_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """A new version of an SLO, based on the version the form was opened on (a newer edit by
    someone else refuses the save, as `parent_version` does in the API)."""
    slo = Slo.objects.select_related("service").filter(pk=pk, archived_at__isnull=True).first()
    if slo is None:
        raise Http404("no such SLO")
    errors = FormErrors(FIELDS)
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in _values_of({})}
        values["parent_version"] = request.POST.get("parent_version", "")
        try:
            parent = int(request.POST.get("parent_version", ""))
        except ValueError:
            parent = None
        body = slo_body(request.POST, base=slo.spec)
        body.pop("service", None)
        try:
            updated = slo_services.slo_update(
                actor=request.user,
                slo_id=slo.pk,
                data=body,
                note=(request.POST.get("note") or "").strip(),
                parent_version=parent,
            )
        except DomainError as exc:
            errors.add(exc)
            return _render(
                request,
                slo=slo,
                values=values,
                errors=errors,
            )
        if updated.version == slo.version:
            messages.info(request, "Nothing changed: no new version.")
        else:
            _warn(request, updated)
            messages.success(
                request, f"SLO {updated.service.name}/{updated.name} is now version {updated.version}."
            )
        return redirect("dashboard:slo", pk=slo.pk)
    return _render(request, slo=slo, values=_values_of(slo.spec), errors=errors)


def _warn(request: HttpRequest, slo: Slo) -> None:
    """What the API answers as `warnings` on a create: accepted, but said now."""
    from slo.telemetry.discovery import slo_threshold_warnings

    for warning in slo_threshold_warnings(slo):
        text = warning.get("message", warning) if isinstance(warning, dict) else warning
        messages.warning(request, str(text))
