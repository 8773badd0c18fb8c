"""The Alertmanager webhook as a rollback trigger, and the bearer secrets it authenticates with: every received alert is judged against every
release of its service that is rolling out (routing.releases.alerts says which alerts are about a
rollout), recorded as an `AlertReceipt` with the verdict and its reason, and a release with at
least one acting alert is rolled back with those alerts as the evidence. One transaction per
notification: the receipts and the rollbacks they caused are stored together or not at all.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound, ValidationFailed
from routing.models.releases import AlertReceipt, Release, WebhookSecret
from routing.releases import alerts, selectors
from routing.releases.inputs import WebhookSecretInput, parse_input
from routing.releases.machine import PAUSED, ROLLING_OUT
from routing.releases.transitions import actor_name, release_lock, rollback_issue
from slo.spec import Problem

MAX_EVIDENCE_ALERTS = 20
WEBHOOK_SECRET_PREFIX = "amw_"


def _scope(release: Release) -> alerts.RolloutScope | None:
    """What an alert must match to be about this release's rollout; None when nothing runs it yet."""
    touched = selectors.touched_targets(release_id=release.pk)
    if not touched:
        return None
    severities = selectors.release_settings_for(service_id=release.service_id).alert_severities
    return alerts.RolloutScope(
        release_id=release.pk,
        service=release.service.name,
        rollout_started_at=release.rollout_started_at,
        tiers=frozenset(t.gateway.tier for t in touched),
        regions=frozenset(t.gateway.region for t in touched),
        severities=frozenset(severities or alerts.DEFAULT_SEVERITIES),
    )


def _receipt(
    alert: alerts.Alert,
    *,
    now: datetime,
    received_by: str,
    payload: dict[str, Any],
    release: Release | None,
    acted: bool,
    reason: str,
) -> AlertReceipt:
    return AlertReceipt(
        received_at=now,
        received_by=received_by[:150],
        receiver=str(payload.get("receiver") or "")[:200],
        group_key=str(payload.get("groupKey") or "")[:2000],
        status=alert.status,
        alertname=alert.alertname[:200],
        service=alert.service[:200],
        severity=alert.severity[:63],
        starts_at=alert.starts_at,
        fingerprint=alert.fingerprint,
        labels=alert.labels,
        annotations=alert.annotations,
        release=release,
        acted=acted,
        reason=reason[:2000],
    )


def alertmanager_webhook_handle(*, actor: Any, payload: Any, now: datetime | None = None) -> dict[str, Any]:
    """Judge and record every alert of one notification; roll back each release of a service that
    at least one alert is about (firing, a rollback severity, begun during its rollout, on a tier
    and region it runs on)."""
    now = now or timezone.now()
    parsed, problems = alerts.parse_webhook(payload)
    if problems:
        raise ValidationFailed("invalid Alertmanager payload", problems=[Problem(p, m) for p, m in problems])
    received_by = actor_name(actor)
    by_service: dict[str, list[alerts.Alert]] = defaultdict(list)
    for alert in parsed:
        by_service[alert.service].append(alert)
    receipts: list[AlertReceipt] = []
    acting: dict[int, list[tuple[alerts.Alert, AlertReceipt]]] = defaultdict(list)
    rolled_back: list[int] = []
    with transaction.atomic():
        release_ids = list(
            Release.objects.filter(
                service__name__in=[s for s in by_service if s], state__in=[ROLLING_OUT, PAUSED]
            )
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        releases: dict[str, list[tuple[Release, alerts.RolloutScope]]] = defaultdict(list)
        for release_id in release_ids:  # locked in id order: two notifications never deadlock
            release = release_lock(release_id)
            if release is None or release.state not in (ROLLING_OUT, PAUSED):
                continue
            scope = _scope(release)
            if scope is not None:  # a release paused before its first wave runs nowhere yet
                releases[release.service.name].append((release, scope))
        for service, items in by_service.items():
            for alert in items:
                if not service:
                    receipts.append(
                        _receipt(
                            alert,
                            now=now,
                            received_by=received_by,
                            payload=payload,
                            release=None,
                            acted=False,
                            reason="names no service (no service or slo_service label)",
                        )
                    )
                    continue
                if not releases.get(service):
                    receipts.append(
                        _receipt(
                            alert,
                            now=now,
                            received_by=received_by,
                            payload=payload,
                            release=None,
                            acted=False,
                            reason=f"no release of {service} is rolling out",
                        )
                    )
                    continue
                for release, scope in releases[service]:
                    verdict = alerts.judge(alert, scope)
                    row = _receipt(
                        alert,
                        now=now,
                        received_by=received_by,
                        payload=payload,
                        release=release,
                        acted=verdict.acts,
                        reason=verdict.reason,
                    )
                    receipts.append(row)
                    if verdict.acts:
                        acting[release.pk].append((alert, row))
        for service_releases in releases.values():
            for release, _ in service_releases:
                evidence = acting.get(release.pk)
                if not evidence:
                    continue
                names = ", ".join(sorted({alert.alertname or "?" for alert, _row in evidence}))
                rollback = rollback_issue(
                    release,
                    trigger="alertmanager",
                    actor=actor,
                    now=now,
                    reason=f"Alertmanager: {names} firing for {release.service.name} since the rollout began",
                    evidence={
                        "alerts": [
                            {**alert.as_evidence(), "why": row.reason}
                            for alert, row in evidence[:MAX_EVIDENCE_ALERTS]
                        ],
                        "receiver": payload.get("receiver"),
                        "groupKey": payload.get("groupKey"),
                    },
                )
                for _alert, row in evidence:
                    row.rollback = rollback
                rolled_back.append(release.pk)
        AlertReceipt.objects.bulk_create(receipts)
    return {
        "alerts": len(parsed),
        "services": sorted(s for s in by_service if s),
        "rolled_back": rolled_back,
        "decisions": [
            {
                "alertname": r.alertname,
                "service": r.service,
                "fingerprint": r.fingerprint,
                "release": r.release_id,
                "acted": r.acted,
                "reason": r.reason,
            }
            for r in receipts
        ],
    }


def webhook_secret_create(*, actor: Any, name: Any) -> tuple[WebhookSecret, str]:
    """A new Alertmanager bearer secret; the raw value is returned this once, only its hash is kept."""
    name = parse_input(WebhookSecretInput, {"name": name}, detail="invalid input").name
    raw = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            row = WebhookSecret.objects.create(
                name=name,
                secret_hash=hashlib.sha256(raw.encode()).hexdigest(),
                hint=raw[:8],
                created_by_name=actor_name(actor)[:150],
            )
            audit_record(actor=actor, action="create", obj=row, after={"name": name, "hint": row.hint})
    except IntegrityError:
        raise ValidationFailed(
            "invalid input", problems=[Problem("name", "a secret with this name exists")]
        ) from None
    return row, raw


def webhook_secret_delete(*, actor: Any, secret_id: int) -> None:
    with transaction.atomic():
        row = WebhookSecret.objects.select_for_update().filter(pk=secret_id).first()
        if row is None:
            raise NotFound("no such webhook secret")
        audit_record(actor=actor, action="delete", obj=row, before={"name": row.name, "hint": row.hint})
        row.delete()
