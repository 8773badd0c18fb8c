"""Sending the notification outbox: payloads per channel kind, signing, retries.

Delivery is at least once: a worker that dies after sending but before marking the row sent leaves
it `sending`, and the sweep sends it again after `STALE_CLAIM`. Receivers deduplicate by the
notification id (in the payload and the `X-Notification-Id` header).

Generic webhooks are signed twice over the same body (controlplane.lib.signing): the Stripe-style
`X-Signature: t=<unix seconds>,v1=<hex>` (`v1 = HMAC-SHA256(secret, "<t>.<body>")`, as config pushes
are signed) and the Standard Webhooks headers `webhook-id` (the notification id, stable across
retries), `webhook-timestamp` and `webhook-signature`, so receivers can use the Standard Webhooks
libraries. Receivers should reject a timestamp older than 300 s and compare in constant time.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from controlplane.crypto import SecretUnreadable, decrypt_secret
from controlplane.lib.signing import SIGNATURE_HEADER, sign, standard_webhook_headers
from slo.models.budget import AlertEvent, Notification, NotificationChannel

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
TIMEOUT_S = 10
STALE_CLAIM = timedelta(minutes=10)
SIGNATURE_TOLERANCE_S = 300


class DeliveryFailed(Exception):
    """The channel refused or could not be reached; the message is retried."""


def event_document(notification: Notification) -> dict[str, Any]:
    """The channel-independent description of what happened."""
    event: AlertEvent = notification.alert_event
    slo = event.slo
    return {
        "notification_id": notification.pk,
        "reason": notification.reason,
        "alert": {
            "id": event.pk,
            "key": event.state_key,
            "kind": event.kind,
            "severity": event.severity,
            "state": event.state,
            "at": event.at.isoformat(),
            "windows": event.windows,
            "evidence": event.evidence,
        },
        "service": event.service.name,
        "slo": {"id": slo.pk, "name": slo.name, "objective": slo.objective} if slo else None,
        "composite": event.evidence.get("composite") if event.kind == "composite_burn" else None,
        "url": f"{settings.PUBLIC_URL}/api/v1/alerts/{event.pk}/",
    }


def _summary(doc: dict[str, Any]) -> str:
    alert = doc["alert"]
    subject = f"{doc['service']}/{doc['slo']['name']}" if doc["slo"] else doc["service"]
    if doc.get("composite"):
        member = alert["evidence"].get("burning_member")
        subject = f"{doc['service']}/{doc['composite']['name']} (composite{f', burning: {member}' if member else ''})"
    verb = {"firing": "FIRING", "resolved": "resolved", "reminder": "still firing"}[doc["reason"]]
    what = (
        "error budget burn"
        if alert["kind"] in ("burn_rate", "composite_burn")
        else alert["kind"].replace("_", " ")
    )
    windows = f" over {' and '.join(alert['windows'])}" if alert["windows"] else ""
    return f"[{alert['severity']}] {subject}: {what} {verb}{windows}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_S)
    except requests.RequestException as exc:
        raise DeliveryFailed(f"{exc.__class__.__name__} posting to the channel") from None
    if not 200 <= response.status_code < 300:
        raise DeliveryFailed(f"channel answered HTTP {response.status_code}")


def post_json(url: str, payload: Any) -> None:
    """POST a JSON body; raises DeliveryFailed on a network error or a non-2xx answer."""
    _post(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def deliver(channel: NotificationChannel, notification: Notification, *, now_s: int | None = None) -> None:
    """Send one notification through its channel; raises DeliveryFailed."""
    doc = event_document(notification)
    headers = {"Content-Type": "application/json", "X-Notification-Id": str(notification.pk)}
    if channel.kind == "generic_webhook":
        body = json.dumps(doc, sort_keys=True).encode()
        if channel.secret_encrypted:
            try:
                secret = decrypt_secret(channel.secret_encrypted)
            except SecretUnreadable:
                raise DeliveryFailed("the channel secret cannot be decrypted with the current key") from None
            timestamp = int(time.time()) if now_s is None else now_s
            headers[SIGNATURE_HEADER] = sign(secret, body, timestamp=timestamp)
            headers.update(
                standard_webhook_headers(
                    secret, body, message_id=f"notification-{notification.pk}", timestamp=timestamp
                )
            )
        _post(channel.url, body, headers)
    elif channel.kind == "slack":
        alert = doc["alert"]
        color = (
            "#2eb886"
            if alert["state"] == "resolved"
            else ("#d00000" if alert["severity"] == "page" else "#daa038")
        )
        payload = {
            "text": _summary(doc),
            "attachments": [
                {
                    "color": color,
                    "fields": [
                        {"title": "service", "value": doc["service"], "short": True},
                        {"title": "severity", "value": alert["severity"], "short": True},
                        {"title": "at", "value": alert["at"], "short": True},
                    ],
                    "title_link": doc["url"],
                }
            ],
        }
        _post(channel.url, json.dumps(payload).encode(), headers)
    elif channel.kind == "alertmanager":
        # The alert as it is now (see slo.budget.alertmanager), with endsAt from the send time.
        from slo.budget.alertmanager import alertmanager_post, snapshot_of_event

        sent_at = datetime.fromtimestamp(now_s, UTC) if now_s is not None else timezone.now()
        alertmanager_post(channel, [snapshot_of_event(notification.alert_event)], now=sent_at)
    elif channel.kind == "email":
        try:
            send_mail(
                subject=_summary(doc),
                message=json.dumps(doc, indent=2, sort_keys=True),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=list(channel.email_to),
            )
        except OSError as exc:
            raise DeliveryFailed(f"{exc.__class__.__name__} sending email") from None
    else:
        raise DeliveryFailed(f"unknown channel kind {channel.kind!r}")


def notification_send(*, notification_id: int, now: datetime) -> str:
    """Claim one due notification, deliver it, record the outcome. Returns the new state (or
    `skipped` when it was not ours to send)."""
    claimed = Notification.objects.filter(
        Q(state="pending", next_attempt_at__lte=now) | Q(state="sending", claimed_at__lt=now - STALE_CLAIM),
        pk=notification_id,
    ).update(state="sending", claimed_at=now)
    if claimed != 1:
        return "skipped"  # sent already, not due, or another worker has it
    notification = Notification.objects.select_related(
        "channel", "alert_event__service", "alert_event__slo"
    ).get(pk=notification_id)
    attempts = notification.attempts + 1
    try:
        deliver(notification.channel, notification)
    except DeliveryFailed as exc:
        state = "failed" if attempts >= MAX_ATTEMPTS else "pending"
        # Exponential backoff: 30 s, 1 min, 2 min ... capped at an hour.
        delay = timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))
        Notification.objects.filter(pk=notification_id, state="sending").update(
            state=state, attempts=attempts, last_error=str(exc)[:500], next_attempt_at=now + delay
        )
        logger.warning(
            "notification %s via channel %s failed (attempt %s): %s",
            notification_id,
            notification.channel.name,
            attempts,
            exc,
        )
        return state
    Notification.objects.filter(pk=notification_id, state="sending").update(
        state="sent", attempts=attempts, sent_at=now, last_error=""
    )
    return "sent"


def notifications_due(*, now: datetime, limit: int = 500) -> list[int]:
    return list(
        Notification.objects.filter(
            Q(state="pending", next_attempt_at__lte=now)
            | Q(state="sending", claimed_at__lt=now - STALE_CLAIM)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def notifications_send_due(*, now: datetime) -> dict[str, int]:
    """Send every due notification in this process (the sweep; the task runs it periodically)."""
    counts: dict[str, int] = {}
    for notification_id in notifications_due(now=now):
        state = notification_send(notification_id=notification_id, now=now)
        counts[state] = counts.get(state, 0) + 1
    return counts
