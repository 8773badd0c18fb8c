"""Server-rendered pages of the dashboard shell. Domain pages live in their apps."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.dashboard.access import role_required
from controlplane.models import AuditEvent
from controlplane.roles import VIEWER
from slo.models import Slo


@login_required
@role_required(VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    slos = Slo.objects.filter(archived_at__isnull=True).select_related("service").order_by("service__name", "name")
    return render(request, "dashboard/overview.html", {"slos": slos})


@login_required
@role_required(VIEWER)
def audit_log(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all()
    for field in ("object_type", "action", "actor_name", "request_id"):
        value = request.GET.get(field)
        if value:
            events = events.filter(**{field: value})
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/audit.html", {"page": page})
