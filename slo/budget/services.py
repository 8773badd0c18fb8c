"""Writes of the budget engine: notification channels, budget policies, cost models, cost rollups
and cache alerts. Every write is one transaction with its audit event. Evaluation lives in
`slo.budget.evaluation`, alert transitions in `slo.budget.alerts`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.crypto import encrypt_secret
from controlplane.errors import Conflict, NotFound, ValidationFailed
from slo.budget import alerts, cache_checks
from slo.budget.cost import Prices, Usage, compute_costs, parse_prices
from slo.budget.evaluation import budget_minutes_record, slo_evaluate, slo_evaluate_all  # noqa: F401
from slo.budget.policy import PolicyRules
from slo.models import Service
from slo.models.budget import CHANNEL_KINDS, BudgetPolicy, CostModel, CostRollup, NotificationChannel

CHANNEL_FIELDS = (
    "name",
    "kind",
    "url",
    "email_to",
    "services",
    "severities",
    "renotify_interval_s",
    "enabled",
)


def channel_doc(channel: NotificationChannel, *, for_audit: bool = False) -> dict[str, Any]:
    """The channel as stored, never with its secret (only whether one is set). For the audit log
    the URL keeps only scheme and host plus a fingerprint: Slack-style webhook URLs carry their
    credential in the path, and a change must still be visible."""
    doc = {f: getattr(channel, f) for f in CHANNEL_FIELDS}
    doc["has_secret"] = bool(channel.secret_encrypted)
    if for_audit and channel.url:
        parsed = urlparse(channel.url)
        fingerprint = hashlib.sha256(channel.url.encode()).hexdigest()[:12]
        doc["url"] = f"{parsed.scheme}://{parsed.netloc}/… (sha256 {fingerprint})"
    return doc


_CHANNEL_NAME = re.compile(r"[-a-zA-Z0-9_]{1,63}")


def _channel_problems(doc: dict[str, Any]) -> list[dict[str, str]]:
    problems = []
    kind = doc.get("kind")
    if kind not in CHANNEL_KINDS:
        problems.append({"path": "kind", "message": f"one of {', '.join(CHANNEL_KINDS)}"})
    name = doc.get("name")
    if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
        problems.append({"path": "name", "message": "1..63 letters, digits, '-' or '_'"})
    if kind in ("generic_webhook", "slack", "alertmanager"):
        url = doc.get("url")
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
            problems.append({"path": "url", "message": "an http(s) URL is required"})
    if kind == "email":
        to = doc.get("email_to")
        if not isinstance(to, list) or not to:
            problems.append({"path": "email_to", "message": "a list of addresses is required"})
        else:
            for i, address in enumerate(to):
                try:
                    validate_email(address)
                except Exception:  # noqa: BLE001 - any refusal is a problem to report
                    problems.append({"path": f"email_to[{i}]", "message": "not an email address"})
    for key in ("services", "severities", "email_to"):
        value = doc.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            problems.append({"path": key, "message": "must be a list of strings"})
    severities = doc.get("severities")
    if (
        isinstance(severities, list)
        and all(isinstance(v, str) for v in severities)
        and set(severities) - {"page", "ticket"}
    ):
        problems.append({"path": "severities", "message": "page and/or ticket"})
    interval = doc.get("renotify_interval_s", 0)
    if not isinstance(interval, int) or isinstance(interval, bool) or not 0 <= interval <= 7 * 86400:
        problems.append({"path": "renotify_interval_s", "message": "whole seconds, 0 (never) .. 604800"})
    if not isinstance(doc.get("enabled", True), bool):
        problems.append({"path": "enabled", "message": "must be true or false"})
    if (
        "secret" in doc
        and doc["secret"] is not None
        and (not isinstance(doc["secret"], str) or len(doc["secret"]) < 16)
    ):
        problems.append({"path": "secret", "message": "at least 16 characters"})
    if kind == "generic_webhook" and not doc.get("secret") and not doc.get("has_secret"):
        problems.append(
            {"path": "secret", "message": "a generic webhook is signed: give a secret (16+ characters)"}
        )
    return problems


def notification_channel_save(
    *, actor: Any, data: dict[str, Any], channel: NotificationChannel | None = None
) -> NotificationChannel:
    """Create or update (`channel`) a channel. `secret` is write-only: stored encrypted, audited as
    `"set"`, never returned. Unknown fields are refused."""
    unknown = sorted(set(data) - set(CHANNEL_FIELDS) - {"secret"})
    if unknown:
        raise ValidationFailed(
            "invalid channel", problems=[{"path": k, "message": "unknown field"} for k in unknown]
        )
    base = (
        channel_doc(channel)
        if channel
        else {
            "url": "",
            "email_to": [],
            "services": [],
            "severities": [],
            "renotify_interval_s": 0,
            "enabled": True,
        }
    )
    doc = {**base, **data}
    problems = _channel_problems(doc)
    if problems:
        raise ValidationFailed("invalid channel", problems=problems)
    doc.pop("has_secret", None)
    secret = doc.pop("secret", None)
    with transaction.atomic():
        before = channel_doc(channel, for_audit=True) if channel else None
        target = channel or NotificationChannel()
        for key in CHANNEL_FIELDS:
            setattr(target, key, doc[key])
        if secret is not None:
            target.secret_encrypted = encrypt_secret(secret)
        target.updated_at = timezone.now()
        try:
            with transaction.atomic():
                target.save()
        except IntegrityError:
            raise ValidationFailed(
                "invalid channel", problems=[{"path": "name", "message": "name taken"}]
            ) from None
        after = channel_doc(target, for_audit=True)
        if secret is not None:
            after["secret"] = "set"  # the audit log records that it changed, never the value
        audit_record(
            actor=actor, action="update" if channel else "create", obj=target, before=before, after=after
        )
    return target


def notification_channel_delete(*, actor: Any, channel: NotificationChannel) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="delete", obj=channel, before=channel_doc(channel, for_audit=True))
        channel.delete()


POLICY_FIELDS = (
    "low_remaining_ratio",
    "low_extra_approvals",
    "exhausted_remaining_ratio",
    "freeze_allowed_change_kinds",
    "unknown_blocks",
)


def policy_doc(policy: BudgetPolicy) -> dict[str, Any]:
    return {
        "service": policy.service.name if policy.service_id else None,
        **{f: getattr(policy, f) for f in POLICY_FIELDS},
    }


def budget_policy_save(
    *, actor: Any, data: dict[str, Any], policy: BudgetPolicy | None = None
) -> BudgetPolicy:
    """Create or update a policy. `service` (a name, or null for the default) is fixed at creation."""
    unknown = sorted(set(data) - set(POLICY_FIELDS) - {"service"})
    if unknown:
        raise ValidationFailed(
            "invalid policy", problems=[{"path": k, "message": "unknown field"} for k in unknown]
        )
    if policy is not None and "service" in data and data["service"] != policy_doc(policy)["service"]:
        raise ValidationFailed("invalid policy", problems=[{"path": "service", "message": "cannot change"}])
    defaults = PolicyRules().as_dict()
    base = {f: getattr(policy, f) for f in POLICY_FIELDS} if policy else defaults
    doc = {**base, **{k: v for k, v in data.items() if k != "service"}}
    problems = []
    for key in ("low_remaining_ratio", "exhausted_remaining_ratio"):
        if not isinstance(doc[key], int | float) or isinstance(doc[key], bool):
            problems.append({"path": key, "message": "must be a number"})
    if not isinstance(doc["low_extra_approvals"], int) or isinstance(doc["low_extra_approvals"], bool):
        problems.append({"path": "low_extra_approvals", "message": "must be an integer"})
    kinds = doc["freeze_allowed_change_kinds"]
    if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
        problems.append({"path": "freeze_allowed_change_kinds", "message": "must be a list of strings"})
    if not isinstance(doc["unknown_blocks"], bool):
        problems.append({"path": "unknown_blocks", "message": "must be true or false"})
    if not problems:
        rules = PolicyRules(
            **{**doc, "freeze_allowed_change_kinds": tuple(doc["freeze_allowed_change_kinds"])}
        )
        problems = rules.problems()
    service = None
    if policy is None and data.get("service") is not None:
        if not isinstance(data["service"], str):
            raise ValidationFailed(
                "invalid policy", problems=[{"path": "service", "message": "a service name"}]
            )
        service = Service.objects.filter(name=data["service"]).first()
        if service is None:
            problems.append({"path": "service", "message": f"unknown service {data['service']!r}"})
    if problems:
        raise ValidationFailed("invalid policy", problems=problems)
    with transaction.atomic():
        before = policy_doc(policy) if policy else None
        target = policy or BudgetPolicy(service=service)
        for key in POLICY_FIELDS:
            setattr(target, key, doc[key])
        target.updated_at = timezone.now()
        try:
            with transaction.atomic():
                target.save()
        except IntegrityError:
            raise Conflict("this service (or the default) already has a policy; edit it instead") from None
        audit_record(
            actor=actor,
            action="update" if policy else "create",
            obj=target,
            before=before,
            after=policy_doc(target),
        )
    return target


def budget_policy_delete(*, actor: Any, policy: BudgetPolicy) -> None:
    with transaction.atomic():
        audit_record(actor=actor, action="delete", obj=policy, before=policy_doc(policy))
        policy.delete()


def cost_model_create(*, actor: Any, data: dict[str, Any]) -> CostModel:
    """Add the next cost model version (versions are immutable; a change is a new version)."""
    unknown = sorted(set(data) - {"prices", "effective_from", "note"})
    if unknown:
        raise ValidationFailed(
            "invalid cost model", problems=[{"path": k, "message": "unknown field"} for k in unknown]
        )
    prices, problems = parse_prices(data.get("prices"))
    effective = data.get("effective_from")
    if effective is None:
        effective_at = timezone.now()
    else:
        from django.utils.dateparse import parse_datetime

        try:
            effective_at = parse_datetime(effective) if isinstance(effective, str) else None
        except ValueError:  # well formed but impossible, e.g. minute 60
            effective_at = None
        if effective_at is None or effective_at.tzinfo is None:
            problems.append({"path": "effective_from", "message": "an ISO 8601 date-time with a zone"})
    if problems or prices is None:
        raise ValidationFailed("invalid cost model", problems=problems)
    with transaction.atomic():
        # Lock the table's tail so two concurrent creates cannot pick the same version.
        latest = CostModel.objects.select_for_update().aggregate(v=Max("version"))["v"] or 0
        model = CostModel.objects.create(
            version=latest + 1,
            effective_from=effective_at,
            prices=prices.model_dump(mode="json"),
            note=str(data.get("note") or ""),
            author=actor if getattr(actor, "is_authenticated", False) else None,
        )
        audit_record(
            actor=actor, action="create", obj=model, after={"version": model.version, "prices": model.prices}
        )
    return model


def cost_rollup_store(
    *,
    service: Service,
    resolution: str,
    bucket_start: datetime,
    usage: Usage,
    model: CostModel,
    now: datetime | None = None,
) -> list[CostRollup]:
    """Compute and upsert the bucket's cost figures: one row for `all` routes, one per route that
    had traffic or cost. Re-running replaces the rows (idempotent)."""
    prices = Prices.model_validate(model.prices)
    figures = compute_costs(usage, prices)
    now = now or timezone.now()
    rows = [
        ("all", figures.requests, figures.all_in_cost_usd, figures.cost_per_request_usd, figures.as_dict())
    ]
    for route, rc in figures.routes.items():
        rows.append(
            (
                route,
                rc.requests,
                rc.cost_usd,
                rc.cost_per_request_usd,
                {
                    "attempts": rc.attempts,
                    "cost_usd": rc.cost_usd,
                    "input_tokens": rc.input_tokens,
                    "output_tokens": rc.output_tokens,
                    "token_cost_usd": rc.token_cost_usd,
                    "cost_per_1k_tokens_usd": rc.cost_per_1k_tokens_usd,
                },
            )
        )
    stored = []
    with transaction.atomic():
        for route, requests, cost, per_request, detail in rows:
            row, _ = CostRollup.objects.update_or_create(
                service=service,
                route=route,
                resolution=resolution,
                bucket_start=bucket_start,
                defaults={
                    "cost_model_version": model.version,
                    "requests": requests,
                    "cost_usd": cost,
                    "cost_per_request_usd": per_request,
                    "figures": detail,
                    "computed_at": now,
                },
            )
            stored.append(row)
    return stored


def cache_alerts_apply(
    *,
    service_name: str,
    current: cache_checks.CacheWindow,
    baseline: cache_checks.CacheWindow,
    now: datetime,
    max_relative_drop: float = 0.3,
    max_stale_rate: float = 0.05,
) -> int:
    """Run the hit-rate-drop and stale-hit checks for one service and record transitions.
    Returns the number of transitions."""
    service = Service.objects.filter(name=service_name).first()
    if service is None:
        raise NotFound(f"no service named {service_name!r}")
    checks = {
        "cache_hit_drop": cache_checks.hit_rate_drop(current, baseline, max_relative_drop=max_relative_drop),
        "stale_hits": cache_checks.stale_rate_over(current, max_stale_rate=max_stale_rate),
    }
    verdicts = [
        alerts.Verdict(
            key=f"svc:{service.name}:{kind}:cache",
            service=(service.pk, service.name),
            slo_id=None,
            kind=kind,
            severity="ticket",
            verdict=verdict,
            evidence=evidence,
        )
        for kind, (verdict, evidence) in checks.items()
    ]
    with transaction.atomic():
        return alerts.apply_verdicts(verdicts, now=now)[0]


def model_skew_apply(*, rows: Iterable[tuple[str, str, str]], now: datetime) -> int:
    """The hook routing feeds with `(service, tier, model_version)` per gateway. Services that are
    not in `rows` are left as they are (no report is not a verdict)."""
    verdicts = cache_checks.model_version_skew(rows)
    services = {s.name: s for s in Service.objects.filter(name__in=list(verdicts))}
    changes = [
        alerts.Verdict(
            key=f"svc:{name}:model_skew:versions",
            service=(services[name].pk, name),
            slo_id=None,
            kind="model_skew",
            severity="ticket",
            verdict=verdict,
            evidence=evidence,
        )
        for name, (verdict, evidence) in verdicts.items()
        if name in services
    ]
    with transaction.atomic():
        return alerts.apply_verdicts(changes, now=now)[0]


def cost_rollups_compute(*, bucket_start: datetime, resolution: str) -> int:
    """Compute the cost rollups of every service with usage in the bucket `[bucket_start, +1h/+1d)`
    from the contract series, with the cost model in force at the bucket's start. Idempotent.
    Returns the rows stored (0 without a cost model)."""
    from datetime import timedelta

    from slo.budget.selectors import cost_model_current
    from slo.budget.usage import NAMES, usage_by_service
    from slo.telemetry.selectors import contract_series

    if resolution not in ("hour", "day"):
        raise ValidationFailed(
            "invalid resolution", problems=[{"path": "resolution", "message": "hour or day"}]
        )
    model = cost_model_current(at=bucket_start)
    if model is None:
        return 0
    span = timedelta(hours=1) if resolution == "hour" else timedelta(days=1)
    frame = contract_series(start=bucket_start, end=bucket_start + span, names=list(NAMES))
    usages = usage_by_service(frame, hours=span.total_seconds() / 3600)
    by_name = {s.name: s for s in Service.objects.filter(name__in=list(usages))}
    stored = 0
    for name, usage in usages.items():
        if name in by_name:
            stored += len(
                cost_rollup_store(
                    service=by_name[name],
                    resolution=resolution,
                    bucket_start=bucket_start,
                    usage=usage,
                    model=model,
                )
            )
    return stored
