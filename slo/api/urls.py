from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from slo.api import apply_views, composite_views, correction_views, template_views, views

router = SimpleRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register("slos", views.SloViewSet, basename="slo")
router.register("composites", composite_views.CompositeViewSet, basename="composite")
router.register("corrections", correction_views.CorrectionViewSet, basename="correction")

urlpatterns = [
    # before the router: "from-template" is not a service name
    path(
        "services/from-template/",
        template_views.ServiceFromTemplateView.as_view(),
        name="service-from-template",
    ),
    path("service-templates/", template_views.ServiceTemplateListView.as_view(), name="service-templates"),
    path("openslo/import/", views.OpenSloImportView.as_view(), name="openslo-import"),
    path("openslo/export/", views.OpenSloExportView.as_view(), name="openslo-export"),
    path("openslo/apply/", apply_views.SloApplyView.as_view(), name="openslo-apply"),
    path("openslo/plan/", apply_views.SloPlanView.as_view(), name="openslo-plan"),
    *router.urls,
]
