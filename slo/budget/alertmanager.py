"""Alertmanager: post what is true now, and keep posting it while it is true.

Alertmanager ends an alert at its `endsAt`; one posted without `endsAt` ends `resolve_timeout` after
it arrived (5 minutes by default). So, as Prometheus does, every firing alert is re-posted each
`RESEND_INTERVAL_S` with `endsAt = now + 4 * max(evaluation interval, resend interval)`: it stays
active through three lost re-posts and ends on its own a few minutes after the control plane stops
speaking for it. A resolved alert is posted with `endsAt` = when it resolved, and re-posted for
`RESOLVED_RETENTION` after that, so a lost resolution, or a re-post that read the alert just before
it resolved and arrived just after the resolution, is corrected by the next pass.

Every post describes the alert's current `AlertState`, never the outbox event that queued it: an
outbox "firing" row retried after the alert resolved posts the resolution. Posting the same state
twice changes nothing in Alertmanager, which identifies an alert by its label set; the labels come
only from what the alert is about (kind, severity, service, SLO name), so they are the same on every
post. Evidence goes in annotations, which may change.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Max, Q

from slo.budget.alerts import channel_matches
from slo.models.budget import AlertEvent, AlertState, NotificationChannel

logger = logging.getLogger(__name__)

RESEND_INTERVAL_S = 60  # the "budget: re-post alerts to Alertmanager" schedule
# Prometheus keeps sending a resolved alert for 15 minutes.
RESOLVED_RETENTION = timedelta(minutes=15)
# A channel claimed less than this ago is skipped: a duplicated or re-delivered task posts nothing,
# while a beat tick that comes a few seconds early still runs.
REPOST_MIN_GAP = timedelta(seconds=RESEND_INTERVAL_S // 2)
POST_CHUNK = 500


def ends_at_horizon() -> timedelta:
    """How far ahead a firing alert's `endsAt` is set. Prometheus' rule: 4 x max(evaluation
    interval, resend interval), so three lost re-posts in a row do not end the alert."""
    return timedelta(seconds=4 * max(settings.EVALUATION_INTERVAL_S, RESEND_INTERVAL_S))


@dataclass(frozen=True)
class AlertSnapshot:
    """What one alert is now, as plain data."""

    key: str
    kind: str
    severity: str
    service: str
    slo: str | None
    firing: bool
    starts_at: datetime
    resolved_at: datetime | None
    event_id: int | None
    windows: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def alert_labels(snapshot: AlertSnapshot) -> dict[str, str]:
    """The identity Alertmanager groups and deduplicates by. `slo_service`/`slo_name` repeat
    `service`/`slo` under the names the exported Prometheus rules use, so one route matches both."""
    alertname = {"burn_rate": "SLOErrorBudgetBurn", "composite_burn": "CompositeSLOErrorBudgetBurn"}
    labels = {
        "alertname": alertname.get(snapshot.kind, "InferenceCacheAlert"),
        "service": snapshot.service,
        "severity": snapshot.severity,
        "alert_kind": snapshot.kind,
        "slo_service": snapshot.service,
    }
    if snapshot.slo:
        labels["slo"] = snapshot.slo
        labels["slo_name"] = snapshot.slo
    composite = snapshot.evidence.get("composite") if snapshot.kind == "composite_burn" else None
    if isinstance(composite, dict) and composite.get("name"):
        labels["composite"] = str(composite["name"])
    return labels


def _number(value: Any) -> str:
    return "no data" if value is None else f"{float(value):.3g}"


def alert_description(snapshot: AlertSnapshot) -> str:
    """The verified signal in words: for burn-rate alerts, the deciding tiers' burn rates against
    their thresholds."""
    if snapshot.kind in ("burn_rate", "composite_burn"):
        tiers = [t for t in snapshot.evidence.get("tiers", []) if t.get("severity") == snapshot.severity]
        wanted = "firing" if snapshot.firing else "not_firing"
        deciding = [t for t in tiers if t.get("status") == wanted] or tiers
        text = "; ".join(
            f"{t['long_window']}/{t['short_window']} burn rate {_number(t.get('long_burn_rate'))}/"
            f"{_number(t.get('short_burn_rate'))} vs threshold {_number(t.get('burn_rate_threshold'))} "
            f"({t['status'].replace('_', ' ')})"
            for t in deciding
        )
        member = snapshot.evidence.get("burning_member")
        return f"{text}; burning member {member}" if member else text
    return ", ".join(f"{k}={v}" for k, v in sorted(snapshot.evidence.items()))


def alert_summary(snapshot: AlertSnapshot) -> str:
    subject = f"{snapshot.service}/{snapshot.slo}" if snapshot.slo else snapshot.service
    what = "error budget burn" if snapshot.kind == "burn_rate" else snapshot.kind.replace("_", " ")
    windows = f" over {' and '.join(snapshot.windows)}" if snapshot.windows else ""
    return f"[{snapshot.severity}] {subject}: {what} {'FIRING' if snapshot.firing else 'resolved'}{windows}"


def postable_alert(snapshot: AlertSnapshot, *, now: datetime, public_url: str) -> dict[str, Any]:
    """Alertmanager API v2 `postableAlert` for the snapshot as of `now` (the send time)."""
    ends_at = now + ends_at_horizon() if snapshot.firing else snapshot.resolved_at
    assert ends_at is not None
    out: dict[str, Any] = {
        "labels": alert_labels(snapshot),
        "annotations": {
            "summary": alert_summary(snapshot),
            "description": alert_description(snapshot),
            "evidence": json.dumps(snapshot.evidence, sort_keys=True, separators=(",", ":")),
            "alert_key": snapshot.key,
        },
        "startsAt": snapshot.starts_at.isoformat(),
        "endsAt": ends_at.isoformat(),
    }
    if snapshot.event_id is not None:
        out["generatorURL"] = f"{public_url}/api/v1/alerts/{snapshot.event_id}/"
    return out


def _snapshots(states: Iterable[AlertState]) -> list[AlertSnapshot]:
    """Snapshots of states that have fired at least once; one extra query for the start of the
    resolved ones (their latest firing event)."""
    states = [s for s in states if s.since is not None]
    resolved_keys = [s.key for s in states if not s.firing]
    fired_at = (
        dict(
            AlertEvent.objects.filter(state_key__in=resolved_keys, state="firing")
            .values("state_key")
            .annotate(at=Max("at"))
            .values_list("state_key", "at")
        )
        if resolved_keys
        else {}
    )
    out = []
    for state in states:
        event = state.last_event
        assert state.since is not None
        out.append(
            AlertSnapshot(
                key=state.key,
                kind=state.kind,
                severity=state.severity,
                service=state.service.name,
                slo=state.slo.name if state.slo else None,
                firing=state.firing,
                starts_at=state.since
                if state.firing
                else min(fired_at.get(state.key, state.since), state.since),
                resolved_at=None if state.firing else state.since,
                event_id=event.pk if event else None,
                windows=list(event.windows) if event else [],
                evidence=dict(event.evidence) if event else {},
            )
        )
    return out


def _states() -> Any:
    return AlertState.objects.select_related("service", "slo", "last_event")


def snapshot_of_event(event: AlertEvent) -> AlertSnapshot:
    """The current state of the alert an outbox event is about. An alert whose state row is gone
    (its SLO was deleted) is posted as resolved at the event."""
    state = _states().filter(key=event.state_key).first()
    found = _snapshots([state]) if state is not None else []
    if found:
        return found[0]
    return AlertSnapshot(
        key=event.state_key,
        kind=event.kind,
        severity=event.severity,
        service=event.service.name,
        slo=event.slo.name if event.slo else None,
        firing=False,
        starts_at=event.at,
        resolved_at=event.at,
        event_id=event.pk,
        windows=list(event.windows),
        evidence=dict(event.evidence),
    )


def alerts_to_repost(*, now: datetime) -> list[AlertSnapshot]:
    """Every firing alert, and every alert resolved within `RESOLVED_RETENTION`."""
    return _snapshots(_states().filter(Q(firing=True) | Q(firing=False, since__gte=now - RESOLVED_RETENTION)))


def alertmanager_post(
    channel: NotificationChannel, snapshots: Sequence[AlertSnapshot], *, now: datetime
) -> None:
    """POST the snapshots to `<url>/api/v2/alerts` in chunks; raises `notify.DeliveryFailed`."""
    from slo.budget.notify import post_json

    for start in range(0, len(snapshots), POST_CHUNK):
        chunk = [
            postable_alert(s, now=now, public_url=settings.PUBLIC_URL)
            for s in snapshots[start : start + POST_CHUNK]
        ]
        post_json(channel.url.rstrip("/") + "/api/v2/alerts", chunk)


def alertmanager_repost(*, now: datetime) -> dict[str, int]:
    """The re-send pass: post every firing (and recently resolved) alert to every enabled
    Alertmanager channel it matches. Returns alerts posted per channel name (channels claimed by
    another worker within `REPOST_MIN_GAP` are left out).

    The claim is a conditional update of the channel's `reposted_at`; a failed post is logged and
    retried by the next pass, well before the alerts' `endsAt`.
    """
    from slo.budget.notify import DeliveryFailed

    channels = list(NotificationChannel.objects.filter(kind="alertmanager", enabled=True))
    if not channels:
        return {}
    snapshots = alerts_to_repost(now=now)
    posted: dict[str, int] = {}
    for channel in channels:
        claimed = NotificationChannel.objects.filter(
            Q(reposted_at__isnull=True) | Q(reposted_at__lte=now - REPOST_MIN_GAP),
            pk=channel.pk,
            enabled=True,
        ).update(reposted_at=now)
        if claimed != 1:
            continue  # another worker re-posted to this channel moments ago
        mine = [s for s in snapshots if channel_matches(channel, s.service, s.severity)]
        if not mine:
            posted[channel.name] = 0
            continue
        try:
            alertmanager_post(channel, mine, now=now)
        except DeliveryFailed as exc:
            logger.warning(
                "re-posting %s alerts to alertmanager channel %s failed: %s", len(mine), channel.name, exc
            )
            continue
        posted[channel.name] = len(mine)
    return posted
