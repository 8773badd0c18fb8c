from __future__ import annotations

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from routing.api import capacity_views, context_views, decision_views, fleet_views

router = SimpleRouter()
router.register("gateways", fleet_views.GatewayViewSet, basename="gateway")

urlpatterns = [
    # gateway-facing; the trailing slash is optional so plain HTTP clients need no redirect
    re_path(r"^gateways/(?P<pk>[0-9]+)/config/?$", fleet_views.gateway_config, name="gateway-config"),
    re_path(
        r"^gateways/(?P<pk>[0-9]+)/heartbeat/?$",
        fleet_views.GatewayHeartbeatView.as_view(),
        name="gateway-heartbeat",
    ),
    re_path(
        r"^gateways/(?P<pk>[0-9]+)/telemetry/?$",
        fleet_views.GatewayTelemetryView.as_view(),
        name="gateway-telemetry",
    ),
    re_path(
        r"^gateways/(?P<pk>[0-9]+)/contexts/?$",
        context_views.GatewayContextsView.as_view(),
        name="gateway-contexts",
    ),
    re_path(
        r"^gateways/(?P<pk>[0-9]+)/decisions/?$",
        decision_views.GatewayDecisionsView.as_view(),
        name="gateway-decisions",
    ),
    path("decisions/", decision_views.DecisionListView.as_view(), name="decisions"),
    re_path(
        r"^gateways/(?P<pk>[0-9]+)/health/$",
        capacity_views.GatewayHealthView.as_view(),
        name="gateway-health",
    ),
    path(
        "capacity/recommendations/",
        capacity_views.RecommendationListView.as_view(),
        name="capacity-recommendations",
    ),
    path("capacity/scaler/", capacity_views.ScalerMetricView.as_view(), name="capacity-scaler"),
    path("budget-responses/", capacity_views.BudgetResponseListView.as_view(), name="budget-responses"),
    re_path(
        r"^budget-responses/(?P<pk>[0-9]+)/approve/$",
        capacity_views.BudgetResponseApproveView.as_view(),
        name="budget-response-approve",
    ),
    re_path(
        r"^budget-responses/(?P<pk>[0-9]+)/dismiss/$",
        capacity_views.BudgetResponseDismissView.as_view(),
        name="budget-response-dismiss",
    ),
    path("fleet/", fleet_views.FleetView.as_view(), name="fleet"),
    *router.urls,
]
