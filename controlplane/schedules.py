"""Periodic tasks, kept in the database (django-celery-beat) so admins can edit them.

Each app lists its defaults in `<app>/schedules.py` as PERIODIC_TASKS. After
migrate, missing entries are created; existing ones (maybe edited) are left alone.
"""

from __future__ import annotations

import importlib
from typing import Any

APPS_WITH_SCHEDULES = ("slo", "routing")


def declared_periodic_tasks() -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for app in APPS_WITH_SCHEDULES:
        module = importlib.import_module(f"{app}.schedules")
        tasks.extend(module.PERIODIC_TASKS)
    return tasks


def ensure_periodic_tasks(**kwargs: Any) -> int:
    """Create the declared periodic tasks that do not exist yet. Returns how many were created."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for entry in declared_periodic_tasks():
        if PeriodicTask.objects.filter(name=entry["name"]).exists():
            continue
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=entry["every_s"], period=IntervalSchedule.SECONDS
        )
        PeriodicTask.objects.create(
            name=entry["name"],
            task=entry["task"],
            interval=interval,
            kwargs=entry.get("kwargs_json", "{}"),
            description=entry.get("description", ""),
        )
        created += 1
    return created
