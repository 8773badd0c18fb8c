"""Per-service release settings: required approvals, canary criteria, rollback alert severities."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound
from routing.models.releases import ReleaseSettings
from routing.releases.inputs import SETTINGS_MESSAGES, ReleaseSettingsInput, parse_input
from slo.models import Service


def release_settings_save(*, actor: Any, service_name: str, data: Mapping[str, Any]) -> ReleaseSettings:
    """Required approvals (1..10), canary criteria overrides and the severities of Alertmanager
    alerts that roll back a release (default `["page"]`) for one service."""
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound("no such service")
    body = parse_input(
        ReleaseSettingsInput, data, detail="invalid release settings", messages=SETTINGS_MESSAGES
    )
    approvals, canary_raw, severities = body.required_approvals, body.canary, body.alert_severities
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
