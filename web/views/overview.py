"""Server-rendered pages of the dashboard shell: the overview, reports and the audit log.

The SLO and service pages are in `web/views/slos.py`, documents, fleet and releases in
`web/views/routing.py`, the reports in `web/views/reports.py`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from controlplane.lib.charts import SLO_STATES, STATE_LABELS
from controlplane.models import AuditEvent
from controlplane.roles import VIEWER
from routing.fleet.selectors import fleet_summary
from routing.models.fleet import Gateway
from slo.models import Service
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

SORTABLE_COLUMNS = (
    ("state", "State"), ("service", "Service"), ("slo", "SLO"), ("tier", "Tier"), ("class", "Class"),
    ("sli", "SLI (window)"), ("objective", "Objective"), ("budget", "Budget left"),
    ("burn_1h", "Burn 1h"), ("burn_6h", "Burn 6h"), ("burn_3d", "Burn 3d"), ("alerts", "Firing alerts"),
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
        columns.append({
            "key": key, "label": label, "href": f"?{base + '&' if base else ''}sort={next_sort}",
            "aria_sort": ("descending" if filters.descending else "ascending") if active else None,
        })
    context = {
        "nav": "overview",
        "rows": rows,
        "rows_html": rows_html(rows, slo_url=reverse("dashboard:slo", args=[0])[:-2],
                               service_url=reverse("dashboard:service", args=["x"])[:-2]),
        "columns": columns,
        "filters": filters,
        "services": service_summaries(rows=rows, filters=filters),
        "service_names": list(Service.objects.order_by("name").values_list("name", flat=True)),
        "tiers": TIERS,
        "classes": SERVICE_CLASSES,
        "states": [(s, STATE_LABELS[s]) for s in SLO_STATES],
        "burn_columns": BURN_COLUMNS,
        "fleet": fleet_summary(gateways=Gateway.objects.all(), now=now),
        "releases": releases.in_progress(limit=10),
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


def _link(name: str, pk: int) -> str | None:
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:  # the reports API is not wired in (yet)
        return None


@login_required
@role_required(VIEWER)
def reports(request: HttpRequest) -> HttpResponse:
    """Report snapshots (slo.reports), newest period first, with links to their API documents.
    The heavy `numbers` JSON stays in the database: the list only needs the labels."""
    try:
        from slo.reports.selectors import report_queryset
    except ImportError:  # reports are an optional feature of this code base's history
        report_queryset = None
    page = None
    rows: list[dict[str, Any]] = []
    if report_queryset is not None:
        queryset = report_queryset().defer("numbers")
        scope = request.GET.get("scope", "")[:200]
        if scope:
            queryset = queryset.filter(scope_value=scope)
        page = Paginator(queryset, 50).get_page(request.GET.get("page"))
        rows = [{"report": r, "json": _link("report-detail", r.pk), "csv": _link("report-csv", r.pk)} for r in page]
    return render(request, "dashboard/reports.html", {"nav": "reports", "page": page, "rows": rows})
