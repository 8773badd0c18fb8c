"""System checks that validate configuration at start-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def check_settings(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    engine = settings.DATABASES["default"]["ENGINE"]
    if not settings.DEBUG and engine.endswith("sqlite3"):
        problems.append(
            Warning(
                "SQLite with DEBUG off", hint="set DATABASE_URL to PostgreSQL for production", id="cp.W001"
            )
        )
    if not settings.DEBUG and settings.CELERY_BROKER_URL.startswith("filesystem://"):
        problems.append(
            Warning("filesystem broker with DEBUG off", hint="set CELERY_BROKER_URL to Redis", id="cp.W002")
        )
    if settings.CELERY_TASK_ALWAYS_EAGER and not settings.DEBUG:
        problems.append(Error("CELERY_TASK_ALWAYS_EAGER must not be used in production", id="cp.E001"))
    return problems
