from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing, fleet and releases"

    def ready(self) -> None:
        from routing import reports
        from routing.capacity import metrics

        metrics.register()  # active capacity recommendations as gauges on /metrics
        reports.register()  # releases and gateway names for slo's error-budget reports
