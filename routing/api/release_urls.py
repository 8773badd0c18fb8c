from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from routing.api import release_views

router = SimpleRouter()
router.register("releases", release_views.ReleaseViewSet, basename="release")
router.register("models", release_views.ModelVersionViewSet, basename="model-version")
router.register("alertmanager/secrets", release_views.WebhookSecretViewSet, basename="alertmanager-secret")
router.register("alertmanager/alerts", release_views.AlertReceiptViewSet, basename="alertmanager-alert")

urlpatterns = [
    path(
        "release-settings/<slug:service>/",
        release_views.ReleaseSettingsView.as_view(),
        name="release-settings",
    ),
    path(
        "alertmanager/webhook/", release_views.AlertmanagerWebhookView.as_view(), name="alertmanager-webhook"
    ),
    path("provenance/", release_views.ProvenanceView.as_view(), name="provenance"),
    path("provenance/route/", release_views.ProvenanceRouteView.as_view(), name="provenance-route"),
    *router.urls,
]
