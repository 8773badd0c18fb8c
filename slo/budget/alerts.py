"""Alert transitions and the notification outbox.

An alert is a row in `AlertState` keyed by what it is about. A transition is the conditional update
that flips `firing`; only the worker whose update changed the row writes the `AlertEvent` and the
outbox rows, in the same transaction. Sending happens later, from a task (`slo.budget.notify`).

Missing data never resolves an alert: the engine's verdict per tier is three-valued (firing,
not_firing, unknown). A firing alert resolves only when every tier of its severity is *decided*
not firing; while any tier is unknown (no data, insufficient traffic) it stays firing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from controlplane.dbarrays import ids_in
from slo.engine import BatchResult
from slo.models.budget import AlertEvent, AlertState, Notification, NotificationChannel

logger = logging.getLogger(__name__)


class _Channels:
    """Enabled channels, loaded once per evaluation and only if a transition happens."""

    def __init__(self) -> None:
        self._channels: list[NotificationChannel] | None = None

    def matching(self, service_name: str, severity: str) -> list[NotificationChannel]:
        if self._channels is None:
            self._channels = list(NotificationChannel.objects.filter(enabled=True))
        return [c for c in self._channels if channel_matches(c, service_name, severity)]


def channel_matches(channel: NotificationChannel, service_name: str, severity: str) -> bool:
    return (not channel.services or service_name in channel.services) and (
        not channel.severities or severity in channel.severities
    )


@dataclass(frozen=True)
class Verdict:
    """One alert's verdict from one evaluation: True fire, False clear, None unknown."""

    key: str
    service: tuple[int, str]  # (id, name)
    slo_id: int | None
    kind: str
    severity: str
    verdict: bool | None
    windows: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)


def apply_verdicts(verdicts: Sequence[Verdict], *, now: datetime) -> tuple[int, int, int]:
    """Record the transitions these verdicts imply, in the caller's transaction, with a fixed number
    of queries however many alerts flip. Returns (transitions, notifications, queries).

    The conditional UPDATE ... RETURNING is the claim: a row flips for exactly one worker, and only
    that worker writes the event and the outbox rows.
    """
    decided = {v.key: v for v in verdicts if v.verdict is not None}
    if not decided:
        return 0, 0, 0
    fire = [k for k, v in decided.items() if v.verdict]
    clear = [k for k, v in decided.items() if not v.verdict]
    queries = 0
    if fire:
        AlertState.objects.bulk_create(
            [
                AlertState(
                    key=k,
                    service_id=decided[k].service[0],
                    slo_id=decided[k].slo_id,
                    kind=decided[k].kind,
                    severity=decided[k].severity,
                )
                for k in fire
            ],
            ignore_conflicts=True,
        )
        queries += 1
    flipped: list[str] = []
    for keys, firing in ((fire, True), (clear, False)):
        if not keys:
            continue
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE slo_alertstate SET firing = %s, since = %s WHERE key = ANY(%s) AND firing = %s RETURNING key",
                    [firing, now, keys, not firing],
                )
                flipped += [row[0] for row in cursor.fetchall()]
        else:
            # SQLite: one writer at a time, so read-then-update in this transaction is the claim.
            mine = list(
                AlertState.objects.filter(key__in=keys, firing=not firing).values_list("key", flat=True)
            )
            AlertState.objects.filter(key__in=mine).update(firing=firing, since=now)
            flipped += mine
        queries += 1
    if not flipped:
        return 0, 0, queries
    events = AlertEvent.objects.bulk_create(
        [
            AlertEvent(
                state_key=k,
                service_id=decided[k].service[0],
                slo_id=decided[k].slo_id,
                kind=decided[k].kind,
                severity=decided[k].severity,
                state="firing" if decided[k].verdict else "resolved",
                windows=decided[k].windows,
                evidence=decided[k].evidence,
                at=now,
                created_at=now,
            )
            for k in flipped
        ]
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE slo_alertstate s SET last_event_id = v.event_id
                FROM unnest(%s::text[], %s::bigint[]) AS v(key, event_id) WHERE s.key = v.key
                """,
                [[e.state_key for e in events], [e.pk for e in events]],
            )
    else:
        for event in events:
            AlertState.objects.filter(key=event.state_key).update(last_event=event)
    queries += 2
    _announce_pages(
        [
            decided[e.state_key].service[1]
            for e in events
            if e.kind == "burn_rate" and e.severity == "page" and e.state == "firing"
        ],
        now,
    )
    channels = _Channels()
    rows = [
        Notification(channel=c, alert_event=e, reason=e.state, next_attempt_at=now, created_at=now)
        for e in events
        for c in channels.matching(decided[e.state_key].service[1], e.severity)
    ]
    queries += 1
    if rows:
        Notification.objects.bulk_create(rows)
        queries += 1
        _send_after_commit([row.pk for row in rows])
    return len(events), len(rows), queries


def _announce_pages(services: list[str], now: datetime) -> None:
    """After commit, tell listeners (routing's releases) which services started paging."""
    if not services:
        return
    names = sorted(set(services))

    def send() -> None:
        from slo.budget.signals import page_alerts_fired

        for receiver, error in page_alerts_fired.send_robust(sender=None, services=names, at=now):
            if error is not None:  # a listener must not fail the evaluation; its own tick catches up
                logger.warning("page_alerts_fired listener %s failed: %r", receiver, error)

    transaction.on_commit(send)


def _send_after_commit(ids: list[int]) -> None:
    if not ids:
        return

    def enqueue() -> None:
        from slo.tasks.budget import notification_send

        for notification_id in ids:
            try:
                notification_send.delay(notification_id)
            except Exception:  # noqa: BLE001 - the periodic sweep sends what could not be queued
                logger.warning(
                    "could not queue notification %s; the periodic sweep will send it", notification_id
                )

    transaction.on_commit(enqueue)


def burn_rate_transitions(
    *, slo_ids: Sequence[int], services: Sequence[tuple[int, str]], result: BatchResult, now: datetime
) -> tuple[int, int, int]:
    """Page and ticket transitions for a batch. Returns (transitions, notifications, queries)."""
    from slo.budget.evaluation import severity_verdicts

    firing = set(
        AlertState.objects.filter(kind="burn_rate", slo_id__in=ids_in(slo_ids), firing=True).values_list(
            "key", flat=True
        )
    )
    queries = 1
    changes = []
    for row, slo_id in enumerate(slo_ids):
        for severity, verdict in severity_verdicts(result, row).items():
            key = f"slo:{slo_id}:{severity}"
            if verdict is None or verdict == (key in firing):
                continue  # unknown never flips; an unchanged verdict is not a transition
            tiers = [t for t in _tier_evidence(result, row) if t["severity"] == severity]
            decided = [t for t in tiers if t["status"] == ("firing" if verdict else "not_firing")]
            windows = sorted({w for t in decided for w in (t["long_window"], t["short_window"])})
            changes.append(
                Verdict(
                    key=key,
                    service=services[row],
                    slo_id=slo_id,
                    kind="burn_rate",
                    severity=severity,
                    verdict=verdict,
                    windows=windows,
                    evidence={"tiers": tiers},
                )
            )
    transitions, notifications, more = apply_verdicts(changes, now=now)
    return transitions, notifications, queries + more


def _tier_evidence(result: BatchResult, row: int) -> list[dict[str, Any]]:
    from slo.budget.evaluation import _tiers

    return _tiers(result, row)


def alerts_renotify(*, now: datetime) -> int:
    """Reminders for alerts still firing, per channel `renotify_interval_s` (0 = never).

    The last notification of (channel, firing event) decides; so a reminder is sent at most once
    per interval however often this runs.
    """
    states = list(
        AlertState.objects.filter(firing=True, last_event__isnull=False, last_event__state="firing")
        .select_related("service")
        .values_list("last_event_id", "service__name", "severity")
    )
    channels = [c for c in NotificationChannel.objects.filter(enabled=True) if c.renotify_interval_s > 0]
    if not states or not channels:
        return 0
    last_sent = {
        (row["channel_id"], row["alert_event_id"]): row["last"]
        for row in Notification.objects.filter(alert_event_id__in=[s[0] for s in states])
        .values("channel_id", "alert_event_id")
        .annotate(last=Max("created_at"))
    }
    rows = []
    for event_id, service_name, severity in states:
        for channel in channels:
            if not channel_matches(channel, service_name, severity):
                continue
            last = last_sent.get((channel.pk, event_id))
            if last is None or now - last >= timedelta(seconds=channel.renotify_interval_s):
                rows.append(
                    Notification(
                        channel=channel,
                        alert_event_id=event_id,
                        reason="reminder",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
    with transaction.atomic():
        Notification.objects.bulk_create(rows)
        _send_after_commit([row.pk for row in rows])
    return len(rows)
