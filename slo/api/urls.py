from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from slo.api import views

router = SimpleRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register("slos", views.SloViewSet, basename="slo")

urlpatterns = [
    path("openslo/import/", views.OpenSloImportView.as_view(), name="openslo-import"),
    path("openslo/export/", views.OpenSloExportView.as_view(), name="openslo-export"),
    *router.urls,
]
