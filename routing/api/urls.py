from __future__ import annotations

from rest_framework.routers import SimpleRouter

from routing.api import documents_views

router = SimpleRouter()
router.register("routing-policies", documents_views.RoutingPolicyViewSet, basename="routing-policy")
router.register("cache-configs", documents_views.CacheConfigViewSet, basename="cache-config")

urlpatterns = [*router.urls]
