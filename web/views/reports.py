"""Dashboard pages of the reports: the list of snapshots and one report's page (read-only)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from controlplane.errors import NotFound
from controlplane.roles import VIEWER
from slo.models.reports import PERIOD_UNITS
from slo.reports import selectors
from slo.reports.render import report_page_context
from web.access import role_required

PAGE_SIZE = 50


@login_required
@role_required(VIEWER)
def report_list(request: HttpRequest) -> HttpResponse:
    """Every report, newest period first, filterable by scope (service or team) and period."""
    reports = selectors.report_queryset().defer("numbers")
    scope = request.GET.get("scope", "").strip()
    period = request.GET.get("period", "")
    if scope:
        reports = reports.filter(Q(scope_value=scope))
    if period in PERIOD_UNITS:
        reports = reports.filter(period=period)
    page = Paginator(reports, PAGE_SIZE).get_page(request.GET.get("page"))
    # The summary is a small part of `numbers`: read it with a JSON path, not the whole snapshot.
    summaries = dict(
        selectors.report_queryset().filter(pk__in=[r.pk for r in page]).values_list("pk", "numbers__summary")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "reports/list.html",
        {
            "nav": "reports",
            "page": page,
            "query": query.urlencode(),
            "periods": PERIOD_UNITS,
            "filters": {"scope": scope, "period": period},
            "rows": [{"report": r, "summary": summaries.get(r.pk) or {}} for r in page],
        },
    )


@login_required
@role_required(VIEWER)
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One report as it was generated: tables, charts and a CSV link."""
    try:
        report = selectors.report_get(report_id=pk)
    except NotFound:
        raise Http404("no such report") from None
    return render(request, "reports/page.html", {"nav": "reports", **report_page_context(report)})
