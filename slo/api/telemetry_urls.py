from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from slo.api import telemetry_views as views
from slo.api.discovery_views import TelemetrySourceDiscoveryView

router = SimpleRouter()
router.register("telemetry-sources", views.TelemetrySourceViewSet, basename="telemetrysource")

urlpatterns = [
    path("slos/<int:slo_id>/minutes/", views.SloMinutesView.as_view(), name="slo-minutes"),
    path(
        "telemetry-sources/<int:source_id>/discovery/",
        TelemetrySourceDiscoveryView.as_view(),
        name="telemetrysource-discovery",
    ),
    *router.urls,
]
