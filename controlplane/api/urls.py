from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from controlplane.api import views

router = SimpleRouter()
router.register("tokens", views.ApiTokenViewSet, basename="apitoken")
router.register("audit-events", views.AuditEventViewSet, basename="auditevent")

urlpatterns = [path("me/", views.me, name="me"), *router.urls]
