from __future__ import annotations

from django.apps import AppConfig


class ControlplaneConfig(AppConfig):
    name = "controlplane"
    verbose_name = "Control plane core"

    def ready(self) -> None:
        from controlplane import checks  # noqa: F401  (registers system checks)
