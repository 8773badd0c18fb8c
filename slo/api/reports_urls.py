from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from slo.api import reports_views as views

router = SimpleRouter()
router.register("reports", views.ReportViewSet, basename="report")
router.register("report-schedules", views.ReportScheduleViewSet, basename="reportschedule")

urlpatterns = [
    # before the router: "generate" is not a report id
    path("reports/generate/", views.ReportGenerateView.as_view(), name="report-generate"),
    path("reports/<str:pk>/csv/", views.ReportCsvView.as_view(), name="report-csv"),
    *router.urls,
]
