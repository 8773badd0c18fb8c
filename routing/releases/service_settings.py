"""Per-service release settings: required approvals, canary criteria, rollback alert severities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound, ValidationFailed
from routing.models.releases import ReleaseSettings
from routing.releases import alerts, canary
from slo.models import Service
from slo.spec import Problem


def release_settings_save(*, actor: Any, service_name: str, data: Mapping[str, Any]) -> ReleaseSettings:
    """Required approvals (1..10), canary criteria overrides and the severities of Alertmanager
    alerts that roll back a release (default `["page"]`) for one service."""
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound("no such service")
    problems: list[Problem] = []
    for key in sorted(set(data) - {"required_approvals", "canary", "alert_severities"}):
        problems.append(Problem(key, "unknown field"))
    severities = data.get("alert_severities", list(alerts.DEFAULT_SEVERITIES))
    problems += [Problem("alert_severities", message) for message in alerts.severities_problems(severities)]
    approvals = data.get("required_approvals", 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= 10:
        problems.append(Problem("required_approvals", "an integer from 1 to 10"))
    canary_raw = data.get("canary", {})
    allowed = {*canary.Criteria.__dataclass_fields__, "window_minutes", "lag_minutes"}
    if not isinstance(canary_raw, dict):
        problems.append(Problem("canary", "an object"))
    else:
        for key, value in canary_raw.items():
            if key not in allowed:
                problems.append(
                    Problem(f"canary.{key}", f"unknown criterion; known: {', '.join(sorted(allowed))}")
                )
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                problems.append(Problem(f"canary.{key}", "a non-negative number"))
    if problems:
        raise ValidationFailed("invalid release settings", problems=problems)
    with transaction.atomic():
        row = ReleaseSettings.objects.select_for_update().filter(service=service).first()
        before = (
            None
            if row is None
            else {
                "required_approvals": row.required_approvals,
                "canary": row.canary,
                "alert_severities": row.alert_severities,
            }
        )
        if row is None:
            row = ReleaseSettings(service=service)
        row.required_approvals = approvals
        row.canary = canary_raw
        row.alert_severities = severities
        row.updated_at = timezone.now()
        row.save()
        audit_record(
            actor=actor,
            action="update" if before else "create",
            obj=row,
            before=before,
            after={
                "required_approvals": row.required_approvals,
                "canary": row.canary,
                "alert_severities": row.alert_severities,
            },
        )
    return row
