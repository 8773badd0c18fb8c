from __future__ import annotations

from django.apps import AppConfig


class SloConfig(AppConfig):
    name = "slo"
    verbose_name = "SLOs, telemetry and error budgets"
