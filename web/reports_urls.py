"""Dashboard URLs of the reports: the list at `/reports/` and one report's page."""

from __future__ import annotations

from django.urls import path

from web.views import reports as views

app_name = "reports"

urlpatterns = [
    path("reports/", views.report_list, name="list"),
    path("reports/<int:pk>/", views.report_detail, name="detail"),
]
