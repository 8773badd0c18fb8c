from __future__ import annotations

from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"
    verbose_name = "Routing, fleet and releases"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from routing import reports
        from routing.capacity import metrics
        from routing.fleet import pollcache
        from routing.models.fleet import Gateway
        from routing.releases.rollout import releases_step_on_page
        from slo.budget.signals import page_alerts_fired

        metrics.register()  # active capacity recommendations as gauges on /metrics
        reports.register()  # releases and gateway names for slo's error-budget reports
        # a page-level burn steps the service's rolling-out releases at once (burn rollback)
        page_alerts_fired.connect(releases_step_on_page, dispatch_uid="routing.releases.step_on_page")
        # a saved or deleted gateway's cached config-poll answer is dropped (credentials, revision)
        post_save.connect(pollcache.on_gateway_saved, sender=Gateway, dispatch_uid="fleet-poll-cache-save")
        post_delete.connect(
            pollcache.on_gateway_deleted, sender=Gateway, dispatch_uid="fleet-poll-cache-delete"
        )
