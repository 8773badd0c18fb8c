"""Celery tasks: thin adapters that take ids and call services."""

from __future__ import annotations

from routing.tasks import capacity, decisions, delivery, releases  # noqa: F401
