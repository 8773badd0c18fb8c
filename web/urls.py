from __future__ import annotations

from django.urls import path

from web.live import live_json
from web.views import (
    composites,
    document_forms,
    documents,
    fleet,
    gateways,
    profile,
    release_forms,
    releases,
    services,
    slo_forms,
)
from web.views import overview as views
from web.views import slos as slo_views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    # each live page's JSON twin (web/live.py): the page's own figures, for static/js/live.js
    path("live/", live_json(views.overview), name="overview-live"),
    path("audit/", views.audit_log, name="audit"),
    path("profile/", profile.profile, name="profile"),
    path("slos/new/", slo_forms.slo_new, name="slo-new"),
    path("slos/<int:pk>/", slo_views.slo_detail, name="slo"),
    path("slos/<int:pk>/edit/", slo_forms.slo_edit, name="slo-edit"),
    path("slos/<int:pk>/live/", live_json(slo_views.slo_detail), name="slo-live"),
    path("composites/<int:pk>/", composites.composite_detail, name="composite"),
    path("services/<slug:name>/", services.service_detail, name="service"),
    path("policies/", documents.policies, name="policies"),
    path("policies/<slug:kind_slug>/<int:pk>/", documents.document_detail, name="document"),
    path("policies/<slug:kind_slug>/<int:pk>/edit/", document_forms.document_edit, name="document-edit"),
    path(
        "policies/<slug:kind_slug>/<int:pk>/versions/<int:version>/approve/",
        document_forms.document_approve,
        name="document-approve",
    ),
    path("fleet/", fleet.fleet, name="fleet"),
    path("fleet/live/", live_json(fleet.fleet), name="fleet-live"),
    path("fleet/gateways/<int:pk>/", gateways.gateway_detail, name="gateway"),
    path("releases/", releases.releases, name="releases"),
    path("releases/new/", release_forms.release_new, name="release-new"),
    path("releases/<int:pk>/", releases.release_detail, name="release"),
    path("releases/<int:pk>/submit/", release_forms.release_submit, name="release-submit"),
    path("releases/<int:pk>/live/", live_json(releases.release_detail), name="release-live"),
    path("releases/<int:pk>/approve/", releases.release_approve, name="release-approve"),
    path("releases/<int:pk>/reject/", releases.release_reject, name="release-reject"),
    path("releases/<int:pk>/rollback/", releases.release_rollback, name="release-rollback"),
    path("releases/<int:pk>/resume/", releases.release_resume, name="release-resume"),
    path("releases/<int:pk>/cancel/", releases.release_cancel, name="release-cancel"),
]
