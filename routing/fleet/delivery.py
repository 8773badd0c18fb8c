"""The delivery worker and the reconcile loop (services: they write).

Claiming is a conditional update inside `SELECT ... FOR UPDATE SKIP LOCKED`, so two workers never
push the same row; a row stuck in_flight (its worker died) is handed out again after
IN_FLIGHT_TIMEOUT_S, which is safe because gateways ACK a revision they already run. HTTP happens
in a bounded thread pool with no database access; results are written back from the calling
thread in a few batched transactions.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from controlplane.crypto import SecretUnreadable, decrypt_secret
from routing.fleet.adapters import prepare as adapter_prepare
from routing.fleet.bundle import bundle_etag
from routing.fleet.push import PushOutcome, push_bundle
from routing.fleet.services import _record_nack
from routing.models.fleet import Delivery, Gateway

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 300.0
# Longer than the slowest push (connect + read timeouts) with a wide margin.
IN_FLIGHT_TIMEOUT_S = 120
MAX_WORKERS = 32
# A drifted gateway is pushed again at most this often; sooner once it heartbeats after a failure.
REDELIVER_AFTER_S = 300


def backoff_s(attempts: int, *, rng: random.Random | None = None) -> float:
    """Delay before the next attempt after `attempts` tries: exponential, capped, "equal jitter"
    (half fixed, half random) so a fleet that failed together does not retry together."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(0, attempts - 1))
    return ceiling / 2 + (rng or random).random() * ceiling / 2


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def as_dict(self) -> dict[str, Any]:
        return {"claimed": self.claimed, "outcomes": dict(self.outcomes)}


def delivery_claim_due(*, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` due deliveries (rollbacks first) for this worker; returns their ids."""
    stuck_before = now - timedelta(seconds=IN_FLIGHT_TIMEOUT_S)
    with transaction.atomic():
        Delivery.objects.filter(state=Delivery.IN_FLIGHT, claimed_at__lt=stuck_before).update(
            state=Delivery.PENDING, last_error="worker lost while in flight; retrying"
        )
        ids = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Delivery.PENDING, next_attempt_at__lte=now)
            .exclude(gateway__push_url="")  # poll-only gateways: confirmed by their heartbeat
            .order_by("priority", "next_attempt_at", "id")
            .values_list("pk", flat=True)[:limit]
        )
        if ids:
            # The state=PENDING filter makes this the claim even without the row lock.
            Delivery.objects.filter(pk__in=ids, state=Delivery.PENDING).update(
                state=Delivery.IN_FLIGHT, claimed_at=now, attempts=F("attempts") + 1
            )
    return ids


def delivery_dispatch_due(
    *,
    now: datetime | None = None,
    limit: int = 2000,
    max_workers: int = MAX_WORKERS,
    push: Any = push_bundle,
) -> DispatchReport:
    """Claim due deliveries, push them concurrently, record ACK/NACK/retry. `push` is the HTTP
    edge (replaceable in benchmarks that count calls; tests use real gateways)."""
    now = now or timezone.now()
    report = DispatchReport()
    ids = delivery_claim_due(now=now, limit=limit)
    report.claimed = len(ids)
    if not ids:
        return report
    rows = list(Delivery.objects.filter(pk__in=ids).select_related("gateway", "revision"))
    jobs: list[tuple[Delivery, Any, dict[str, Any]]] = []
    unreadable: list[tuple[Delivery, PushOutcome]] = []
    for row in rows:
        try:
            secret = decrypt_secret(row.gateway.signing_secret_encrypted)
        except SecretUnreadable:
            unreadable.append((row, PushOutcome("retry", None, "signing secret unreadable: rotate it")))
            continue
        # the gateway's kind decides what is sent and how the ACK is confirmed (routing.fleet.adapters)
        prepared = adapter_prepare(row.gateway, row.revision.bundle, row.revision.revision)
        if isinstance(prepared, PushOutcome):
            unreadable.append((row, prepared))
            continue
        job: dict[str, Any] = {
            "url": row.gateway.push_url,
            "body": prepared.body,
            "secret": secret,
            "revision": row.revision.revision,
            **prepared.extra,
        }
        previous = _previous_secret(row.gateway, now=now)
        if previous is not None:
            job["previous_secret"] = previous
        jobs.append((row, push if prepared.push is push_bundle else prepared.push, job))
    results: list[tuple[Delivery, PushOutcome]] = list(unreadable)
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(jobs) or 1))) as pool:
        futures = {pool.submit(fn, **kwargs): row for row, fn, kwargs in jobs}
        for future in as_completed(futures):
            row = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:  # noqa: BLE001 - one broken push must not lose the batch
                logger.exception("push to gateway %s failed unexpectedly", row.gateway_id)
                outcome = PushOutcome("retry", None, f"{exc.__class__.__name__}")
            results.append((row, outcome))
            if len(results) >= 200:
                _record(results, now=now, report=report)
                results = []
    _record(results, now=now, report=report)
    return report


def _previous_secret(gateway: Gateway, *, now: datetime) -> str | None:
    """The rotated-out signing secret while its grace window lasts, else None. Pushes are then
    signed under both, so the gateway verifies them whichever secret it is configured with."""
    expires_at = gateway.previous_signing_secret_expires_at
    if not gateway.previous_signing_secret_encrypted or expires_at is None or expires_at <= now:
        return None
    try:
        return decrypt_secret(gateway.previous_signing_secret_encrypted)
    except SecretUnreadable:
        # The current secret still signs: only a gateway not yet moved to it is affected.
        logger.warning(
            "previous signing secret of gateway %s is unreadable; signing with the current one only",
            gateway.pk,
        )
        return None


def _record(results: list[tuple[Delivery, PushOutcome]], *, now: datetime, report: DispatchReport) -> None:
    if not results:
        return
    finished = now
    acked_by_revision: dict[int, list[int]] = defaultdict(list)
    with transaction.atomic():
        # Gateways first, in id order, then their deliveries: the order a heartbeat takes them
        # (heartbeat_record -> delivery_confirm_applied), so the two never deadlock.
        list(
            Gateway.objects.select_for_update()
            .filter(pk__in=sorted({row.gateway_id for row, _outcome in results}))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for row, outcome in results:
            report.outcomes[outcome.kind] += 1
            base = Delivery.objects.filter(pk=row.pk, state=Delivery.IN_FLIGHT)
            if outcome.kind == "ack":
                acked_by_revision[row.revision.revision].append(row.pk)
            elif outcome.kind == "stale":
                base.update(state=Delivery.SUPERSEDED, finished_at=finished, last_error=outcome.error)
                _advance_applied(row.gateway_id, outcome.applied_revision or 0)
            elif outcome.kind == "nack":
                if base.update(state=Delivery.NACKED, finished_at=finished, last_error=outcome.error):
                    gateway = Gateway.objects.select_for_update().get(pk=row.gateway_id)
                    _record_nack(gateway, row.revision.revision, outcome.error, finished, via="push")
                    gateway.save(update_fields=["last_nack_revision", "last_nack_error", "last_nack_at"])
            elif row.attempts >= MAX_ATTEMPTS:
                base.update(state=Delivery.FAILED, finished_at=finished, last_error=outcome.error)
            else:
                base.update(
                    state=Delivery.PENDING,
                    last_error=outcome.error,
                    next_attempt_at=finished + timedelta(seconds=backoff_s(row.attempts)),
                )
        for revision, pks in acked_by_revision.items():
            Delivery.objects.filter(pk__in=pks, state=Delivery.IN_FLIGHT).update(
                state=Delivery.ACKED, finished_at=finished, last_error=""
            )
            wanted = set(pks)
            gateway_ids = [row.gateway_id for row, _outcome in results if row.pk in wanted]
            _advance_applied(gateway_ids, revision)


def _advance_applied(gateway_ids: int | list[int], revision: int) -> None:
    """An ACK moves the applied revision forward only: revisions are monotonic, and a late ACK of
    an older push must not hide a newer one. Heartbeats (the gateway's own word) may move it back."""
    ids = [gateway_ids] if isinstance(gateway_ids, int) else gateway_ids
    Gateway.objects.filter(pk__in=ids).filter(
        Q(applied_revision__isnull=True) | Q(applied_revision__lt=revision)
    ).update(applied_revision=revision, applied_etag=bundle_etag(revision))


def fleet_reconcile(
    *, now: datetime | None = None, redeliver_after_s: float = REDELIVER_AFTER_S
) -> list[int]:
    """Compare desired and applied revisions; queue a new push for each drifted gateway that has
    no push in progress. Never for a revision the gateway NACKed (it would only NACK again: a
    person or a newer revision must fix it). Returns the new delivery ids.

    After a failed or acknowledged-but-not-applied push, the gateway gets another one once
    `redeliver_after_s` has passed, or as soon as it heartbeats after that push ended (it is back).
    """
    now = now or timezone.now()
    drifted = (
        Gateway.objects.filter(desired_revision__isnull=False)
        .exclude(push_url="")
        .exclude(applied_revision=F("desired_revision"))
        .exclude(last_nack_revision=F("desired_revision"))
        .values_list("pk", "desired_revision", "last_heartbeat_at")
    )
    created: list[int] = []
    for gateway_id, desired, heartbeat_at in drifted:
        with transaction.atomic():
            gateway = (
                Gateway.objects.select_for_update().filter(pk=gateway_id, desired_revision=desired).first()
            )
            if gateway is None:
                continue  # changed under us; the next pass sees the new state
            deliveries = Delivery.objects.filter(gateway_id=gateway_id, revision__revision=desired)
            if deliveries.filter(state__in=Delivery.ACTIVE_STATES).exists():
                continue
            if deliveries.filter(state=Delivery.NACKED).exists():
                continue
            last = deliveries.order_by("-finished_at").first()
            if last is not None and last.finished_at is not None:
                cooled = (now - last.finished_at).total_seconds() >= redeliver_after_s
                came_back = heartbeat_at is not None and heartbeat_at > last.finished_at
                if not (cooled or came_back):
                    continue
            revision_row = gateway.revisions.filter(revision=desired).first()
            if revision_row is None:
                continue
            delivery = Delivery.objects.create(
                gateway=gateway,
                revision=revision_row,
                next_attempt_at=now,
                created_at=now,
                priority=Delivery.PRIORITY_ROLLBACK if revision_row.rollback else Delivery.PRIORITY_NORMAL,
                last_error="re-delivery of drift (reconcile)",
            )
            created.append(delivery.pk)
    return created


def confirm_notes(applied_revision: int) -> tuple[str, str]:
    """The notes on pushes a heartbeat closes: (acked, superseded)."""
    return "confirmed by heartbeat", f"gateway runs revision {applied_revision}"


def delivery_confirm_applied(*, gateway_id: int, applied_revision: int | None, now: datetime) -> int:
    """A gateway says it runs `applied_revision` (heartbeat): open pushes of that revision or older
    are done (acked when equal, superseded when older). Returns how many rows changed."""
    if applied_revision is None:
        return 0
    open_rows = Delivery.objects.filter(gateway_id=gateway_id, state__in=Delivery.ACTIVE_STATES)
    acked, superseded = confirm_notes(applied_revision)
    changed = open_rows.filter(revision__revision=applied_revision).update(
        state=Delivery.ACKED, finished_at=now, last_error=acked
    )
    changed += open_rows.filter(revision__revision__lt=applied_revision).update(
        state=Delivery.SUPERSEDED, finished_at=now, last_error=superseded
    )
    return changed
