from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from slo.api import budget_views as views

router = SimpleRouter()
router.register("alerts", views.AlertEventViewSet, basename="alert")
router.register("notification-channels", views.NotificationChannelViewSet, basename="notificationchannel")
router.register("budget-policies", views.BudgetPolicyViewSet, basename="budgetpolicy")
router.register("cost-models", views.CostModelViewSet, basename="costmodel")
router.register("costs", views.CostRollupViewSet, basename="cost")

urlpatterns = [
    path("slos/<str:pk>/status/", views.SloStatusView.as_view(), name="slo-status"),
    path("slos/<str:pk>/timeseries/", views.SloTimeseriesView.as_view(), name="slo-timeseries"),
    path(
        "slos/<str:pk>/prometheus-rules/", views.SloPrometheusRulesView.as_view(), name="slo-prometheus-rules"
    ),
    path("prometheus-rules/", views.PrometheusRulesView.as_view(), name="prometheus-rules"),
    path(
        "services/<str:name>/budget-status/",
        views.ServiceBudgetStatusView.as_view(),
        name="service-budget-status",
    ),
    *router.urls,
]
