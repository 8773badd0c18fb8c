"""Server-rendered pages of the dashboard shell: the overview and the audit log.

The other pages: `slos.py` (SLO), `services.py` (service), `documents.py` (policies and cache configs),
`fleet.py`, `releases.py` and `reports.py` beside this module.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from controlplane.lib.charts import SLO_STATES, STATE_LABELS
from controlplane.models import AuditEvent
from controlplane.roles import VIEWER
from routing.fleet.selectors import fleet_summary, gateway_queryset
from slo.selectors import service_queryset
from slo.spec import SERVICE_CLASSES, TIERS
from web import releases
from web.access import role_required
from web.overview import (
    BURN_COLUMNS,
    OverviewFilters,
    overview_rows,
    rows_html,
    service_summaries,
)
from web.views.composites import composite_rows

SORTABLE_COLUMNS = (
    ("state", "State"),
    ("service", "Service"),
    ("slo", "SLO"),
    ("tier", "Tier"),
    ("class", "Class"),
    ("sli", "SLI (window)"),
    ("objective", "Objective"),
    ("budget", "Budget left"),
    ("burn_1h", "Burn 1h"),
    ("burn_6h", "Burn 6h"),
    ("burn_3d", "Burn 3d"),
    ("alerts", "Firing alerts"),
)


@login_required
@role_required(VIEWER)
def overview(request: HttpRequest) -> HttpResponse:
    """Every service and SLO with its status, filterable and sortable by query parameters."""
    now = timezone.now()
    filters = OverviewFilters.from_query(request.GET)
    rows = overview_rows(filters=filters, now=now)
    query = request.GET.copy()
    query.pop("sort", None)
    base = query.urlencode()
    columns = []
    for key, label in SORTABLE_COLUMNS:
        active = filters.sort == key
        # a second click on the active column reverses it
        next_sort = f"-{key}" if active and not filters.descending else key
        columns.append(
            {
                "key": key,
                "label": label,
                "href": f"?{base + '&' if base else ''}sort={next_sort}",
                "aria_sort": ("descending" if filters.descending else "ascending") if active else None,
            }
        )
    context = {
        "nav": "overview",
        "rows": rows,
        "rows_html": rows_html(
            rows,
            slo_url=reverse("dashboard:slo", args=[0])[:-2],
            service_url=reverse("dashboard:service", args=["x"])[:-2],
        ),
        "columns": columns,
        "filters": filters,
        "services": service_summaries(rows=rows, filters=filters),
        "service_names": list(service_queryset().values_list("name", flat=True)),
        "tiers": TIERS,
        "classes": SERVICE_CLASSES,
        "states": [(s, STATE_LABELS[s]) for s in SLO_STATES],
        "burn_columns": BURN_COLUMNS,
        "fleet": fleet_summary(gateways=gateway_queryset(), now=now),
        "releases": releases.in_progress(limit=10),
        "composites": composite_rows(now=now),
        "now": now,
    }
    return render(request, "dashboard/overview.html", context)


AUDIT_FILTERS = ("object_type", "action", "actor_name", "request_id")


@login_required
@role_required(VIEWER)
def audit_log(request: HttpRequest) -> HttpResponse:
    """The change log, newest first, filterable by exact values."""
    events = AuditEvent.objects.all().order_by("-at", "-id")
    for name in AUDIT_FILTERS:
        value = request.GET.get(name)
        if value:
            events = events.filter(**{name: value})
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "dashboard/audit.html", {"nav": "audit", "page": page, "query": query.urlencode()})
