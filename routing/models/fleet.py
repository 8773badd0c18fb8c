"""The gateway fleet: registered gateways, their desired revisions and the delivery outbox.

`GatewayRevision` rows are the history of what the control plane wanted each gateway to run;
`Delivery` rows are at once the push queue and its record. Both are written in one transaction
(see routing.fleet.services.gateway_set_desired), so a revision is never stored without the work
that delivers it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from slo.spec import TIERS

TIER_CHOICES = [(t, t.replace("_", " ")) for t in TIERS]
# What a gateway is: our reference gateway, or a gateway people already run that an adapter drives
# (routing.fleet.adapters). Delivery, ACK/NACK, reconcile, waves and rollback are the same for all.
KIND_REFERENCE = "reference"
KIND_LITELLM = "litellm-proxy"
KIND_CHOICES = [(KIND_REFERENCE, "reference gateway"), (KIND_LITELLM, "LiteLLM proxy")]


class Gateway(models.Model):
    """A running edge or cloud inference gateway.

    Credentials: `token_hash` is the sha256 of the token the gateway presents to the control plane
    (the raw value is shown once); `signing_secret_encrypted` is the HMAC key the control plane
    signs pushes with, stored encrypted because it must be reused. `desired_revision` mirrors the
    newest GatewayRevision so the config poll's 304 path is a single indexed read.

    Rotation grace: the credential a rotation retires is kept as `previous_*` (hash / encrypted, like
    the current one) with its own expiry; until then the old token still authenticates and pushes are
    signed under both secrets. Only one previous credential of each kind exists: a second rotation
    within the window replaces it. An expired previous credential is ignored wherever it is read
    (the expiry is checked at use), so clearing it is housekeeping, not a security step.
    """

    name = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(max_length=20, choices=KIND_CHOICES, default=KIND_REFERENCE)
    # the adapter's settings (litellm-proxy: proxy_url, deployments per route, failure, callback)
    adapter = models.JSONField(default=dict, blank=True)
    # the adapter's admin credential (litellm-proxy: the proxy's master key, for the read-back), encrypted
    adapter_secret_encrypted = models.TextField(blank=True)
    service = models.ForeignKey("slo.Service", on_delete=models.PROTECT, related_name="gateways")
    tier = models.CharField(max_length=20, choices=TIER_CHOICES)
    region = models.CharField(max_length=63, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    push_url = models.URLField(
        max_length=500, blank=True, help_text="where signed config pushes go; blank: poll only"
    )
    signing_secret_encrypted = models.TextField()
    token_hash = models.CharField(max_length=64, unique=True)
    token_hint = models.CharField(max_length=12)
    previous_token_hash = models.CharField(max_length=64, blank=True)
    previous_token_expires_at = models.DateTimeField(null=True, blank=True)
    # when the previous token last authenticated (at most once a minute): tells an operator whether
    # the gateway has moved to its new token before the grace window ends
    previous_token_last_used_at = models.DateTimeField(null=True, blank=True)
    previous_signing_secret_encrypted = models.TextField(blank=True)
    previous_signing_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # What the control plane wants (mirror of the newest GatewayRevision.revision).
    desired_revision = models.PositiveIntegerField(null=True, blank=True)
    # What the gateway says it runs: from ACKs and heartbeats.
    applied_revision = models.PositiveIntegerField(null=True, blank=True)
    applied_etag = models.CharField(max_length=40, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    device_health = models.JSONField(default=dict, blank=True)
    last_nack_revision = models.PositiveIntegerField(null=True, blank=True)
    last_nack_error = models.TextField(blank=True)
    last_nack_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["tier", "region"]),
            # the token lookup also tries the previous token (rotation grace); most rows have none
            models.Index(
                fields=["previous_token_hash"],
                name="gateway_prev_token_idx",
                condition=~models.Q(previous_token_hash=""),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GatewayRevision(models.Model):
    """One desired config bundle for one gateway. Immutable; revisions increase per gateway."""

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="revisions")
    revision = models.PositiveIntegerField()
    bundle = models.JSONField()
    reason = models.CharField(max_length=300, blank=True)
    release_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    rollback = models.BooleanField(default=False)
    actor_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["gateway_id", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "revision"], name="gateway_revision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.gateway_id} rev {self.revision}"


class Delivery(models.Model):
    """One attempt-series to push one revision to one gateway: the outbox row.

    pending -> in_flight -> acked | nacked | pending (retry with backoff) | failed (attempts used up);
    pending -> superseded when a newer revision for the gateway is written. A NACKed delivery is
    final: the same revision is never pushed again (the NACK is surfaced on the gateway instead).
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    ACKED = "acked"
    NACKED = "nacked"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    STATES = (PENDING, IN_FLIGHT, ACKED, NACKED, FAILED, SUPERSEDED)
    ACTIVE_STATES = (PENDING, IN_FLIGHT)
    # Lower is sooner: rollbacks go first.
    PRIORITY_ROLLBACK = 0
    PRIORITY_NORMAL = 1

    gateway = models.ForeignKey(Gateway, on_delete=models.CASCADE, related_name="deliveries")
    revision = models.ForeignKey(GatewayRevision, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=12, choices=[(s, s) for s in STATES], default=PENDING)
    priority = models.PositiveSmallIntegerField(
        default=PRIORITY_NORMAL, choices=[(PRIORITY_ROLLBACK, "rollback"), (PRIORITY_NORMAL, "normal")]
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # the dispatcher's claim: due pending rows, rollbacks first
            models.Index(fields=["state", "priority", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["gateway", "state"], name="delivery_gateway_state_idx"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} gw {self.gateway_id} rev-id {self.revision_id} {self.state}"
