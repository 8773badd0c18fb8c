from __future__ import annotations

from django.apps import AppConfig


class ControlplaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane core"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from controlplane import celery, checks  # noqa: F401  (the Celery app for shared_task; system checks)
        from controlplane.api import schema  # noqa: F401  (OpenAPI auth schemes)

        post_migrate.connect(_after_migrate, sender=self)


def _after_migrate(**kwargs: object) -> None:
    from controlplane.schedules import ensure_periodic_tasks

    ensure_periodic_tasks()
