from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from controlplane.api.docs import login_for_people
from controlplane.api.views import api_not_found, healthz
from controlplane.login import admin_login_view, login_view

api_v1 = [
    path("", include("controlplane.api.urls")),
    path("", include("slo.api.urls")),
    path("", include("slo.api.telemetry_urls")),
    path("", include("slo.api.budget_urls")),
    path("", include("routing.api.urls")),
    path("", include("routing.api.fleet_urls")),
    path("", include("routing.api.release_urls")),
    path("", include("slo.api.reports_urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The API reference (Swagger UI from our static files, its script a separate file for the CSP): a
    # page for people, so anonymous visits go to the login page (the schema keeps its API behaviour).
    path("docs/", login_for_people(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include(api_v1)),
    re_path(r"^api/(?P<rest>[\s\S]*)$", api_not_found),  # unmatched API paths answer JSON, never HTML
    path("admin/login/", admin_login_view),  # before the admin's own route: same failure limits as /login/
    path("admin/", admin.site.urls),
    path("login/", login_view, name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("controlplane.metrics_urls")),
    path("", include("web.reports_urls")),
    path("", include("web.urls")),
]
