"""Celery tasks: thin adapters that take ids and call services."""

from __future__ import annotations

from slo.tasks import budget, composites, reports, telemetry  # noqa: F401
