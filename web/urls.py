from __future__ import annotations

from django.urls import path

from web.views import overview as views
from web.views import routing as routing_views
from web.views import slos as slo_views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("audit/", views.audit_log, name="audit"),
    path("slos/<int:pk>/", slo_views.slo_detail, name="slo"),
    path("services/<slug:name>/", slo_views.service_detail, name="service"),
    path("policies/", routing_views.policies, name="policies"),
    path("policies/<slug:kind_slug>/<int:pk>/", routing_views.document_detail, name="document"),
    path("fleet/", routing_views.fleet, name="fleet"),
    path("releases/", routing_views.releases, name="releases"),
    path("releases/<int:pk>/", routing_views.release_detail, name="release"),
    path("releases/<int:pk>/approve/", routing_views.release_approve, name="release-approve"),
    path("releases/<int:pk>/reject/", routing_views.release_reject, name="release-reject"),
    path("releases/<int:pk>/rollback/", routing_views.release_rollback, name="release-rollback"),
    path("releases/<int:pk>/resume/", routing_views.release_resume, name="release-resume"),
    path("releases/<int:pk>/cancel/", routing_views.release_cancel, name="release-cancel"),
]
