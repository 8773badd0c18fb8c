"""Releases, their gates, approvals, transitions and rollbacks; the model registry.

State changes are rows: `ReleaseTransition` is the history of a release's state machine (and its
audit trail), `GateResult` every gate's verdict with its evidence, `ReleaseApproval` every approval
or rejection, `ReleaseRollback` every rollback with its trigger. The `Release` row is the claim:
workers move it with `filter(pk=..., state=X, lock_version=n).update(...)` and check the count.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from routing.releases.alerts import DEFAULT_SEVERITIES
from routing.releases.machine import DRAFT, STATES

RELEASE_KINDS = ("normal", "hotfix", "rollback")
GATE_OUTCOMES = ("pass", "fail", "inconclusive", "not_evaluated")
ROLLBACK_TRIGGERS = ("canary", "burn", "alertmanager", "manual", "gate", "nack")


class ModelVersion(models.Model):
    """One model build a service can run, with where it came from (provenance).

    The provenance fields are fixed once created: a different artifact is a different version.
    `deployed_at` is set when a release carrying it first completes; `rollback_target` names the
    version to return to when this one misbehaves.
    """

    service = models.ForeignKey("slo.Service", on_delete=models.PROTECT, related_name="model_versions")
    name = models.SlugField(max_length=63)
    version = models.CharField(max_length=63)
    description = models.TextField(blank=True)
    training_data_snapshot = models.CharField(
        max_length=300, help_text="dataset id or URI, with its snapshot"
    )
    fine_tuning_source = models.CharField(
        max_length=300, blank=True, help_text="base model or parent checkpoint"
    )
    quantization = models.JSONField(
        default=dict, blank=True, help_text='e.g. {"method": "int8", "calibration": "..."}'
    )
    artifact_digest = models.CharField(max_length=71, help_text="sha256:<64 hex>")
    rollback_target = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service__name", "name", "-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name", "version"], name="model_version_unique"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        """What a gateway bundle carries as `model_version`."""
        return f"{self.name}:{self.version}"


def default_alert_severities() -> list[str]:
    return list(DEFAULT_SEVERITIES)


class ReleaseSettings(models.Model):
    """Per-service release rules (a service without a row uses the defaults)."""

    service = models.OneToOneField("slo.Service", on_delete=models.CASCADE, related_name="release_settings")
    required_approvals = models.PositiveSmallIntegerField(default=1)
    canary = models.JSONField(default=dict, blank=True, help_text="overrides of the canary criteria")
    alert_severities = models.JSONField(
        default=default_alert_severities,
        help_text="severity labels of Alertmanager alerts that roll a release back",
    )
    model_freeze_until = models.DateTimeField(
        null=True, blank=True, help_text="model-version releases are held until then (a budget response)"
    )
    model_freeze_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"release settings of {self.service_id}"


class Release(models.Model):
    """A request to move some gateways to new document versions and/or a model version, in waves.

    `waves` is the plan as stored at submission: `[{"percent", "bake_s", "gateway_ids"}]`; the
    target selector is resolved to concrete gateways then (`ReleaseGateway`). `current_wave` is -1
    until the first wave starts; `wave_phase` is `delivering` (waiting for ACKs) or `baking`.
    """

    KIND_CHOICES = [(k, k) for k in RELEASE_KINDS]
    STATE_CHOICES = [(s, s.replace("_", " ")) for s in STATES]

    service = models.ForeignKey("slo.Service", on_delete=models.PROTECT, related_name="releases")
    kind = models.CharField(max_length=10, choices=KIND_CHOICES, default="normal")
    state = models.CharField(max_length=20, choices=STATE_CHOICES, default=DRAFT)
    lock_version = models.PositiveIntegerField(default=0, help_text="bumped by every claimed change")
    title = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    routing_policy_version = models.ForeignKey(
        "routing.RoutingPolicyVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cache_config_version = models.ForeignKey(
        "routing.CacheConfigVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="releases"
    )
    target_selector = models.JSONField(default=dict, help_text="tier, region, labels, gateways")
    wave_plan = models.JSONField(default=list, help_text='[{"percent", "bake_s"}] as asked')
    waves = models.JSONField(
        default=list, help_text='[{"percent", "requested_percent", "bake_s", "gateway_ids"}] as resolved'
    )
    # The target gateway count for which the author accepted a first wave bigger than asked (the
    # smallest wave is one gateway); a different count at submission needs a new confirmation.
    wave_sizes_confirmed_for = models.PositiveIntegerField(null=True, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    current_wave = models.IntegerField(default=-1)
    wave_phase = models.CharField(max_length=12, blank=True)
    wave_started_at = models.DateTimeField(null=True, blank=True)
    bake_started_at = models.DateTimeField(null=True, blank=True)
    analysed_until = models.DateTimeField(null=True, blank=True, help_text="end of the last analysed minute")
    canary_verdicts = models.JSONField(default=list, help_text="verdicts of the current wave's measurements")
    rollout_started_at = models.DateTimeField(null=True, blank=True)
    paused_from = models.CharField(max_length=20, blank=True)
    paused_reason = models.TextField(blank=True)
    paused_stage = models.CharField(
        max_length=20, blank=True, help_text="submission, wave:<k>, ack:<k>, canary:<k>"
    )
    # stage -> {"by", "reason", "at"}: a person accepted an inconclusive verdict at that stage
    overrides = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "service"], name="release_state_idx")]

    def __str__(self) -> str:
        return f"release {self.pk} of {self.service_id} ({self.state})"


class ReleaseGateway(models.Model):
    """A gateway a release targets, its wave, and what it ran before (the last-known-good)."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="targets")
    gateway = models.ForeignKey("routing.Gateway", on_delete=models.PROTECT, related_name="+")
    wave = models.PositiveSmallIntegerField()
    baseline_revision = models.PositiveIntegerField(null=True, blank=True)
    baseline_bundle = models.JSONField(null=True, blank=True)
    release_revision = models.PositiveIntegerField(null=True, blank=True)
    touched_at = models.DateTimeField(null=True, blank=True)
    # a wave found the device hot or short of memory (routing.capacity.waves): not delivered;
    # retried by the next wave, left out for good after the last
    skipped_at = models.DateTimeField(null=True, blank=True)
    skip_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["release_id", "wave", "gateway_id"]
        constraints = [models.UniqueConstraint(fields=["release", "gateway"], name="release_gateway_once")]

    def __str__(self) -> str:
        return f"release {self.release_id} gateway {self.gateway_id} wave {self.wave}"


class ReleaseTransition(models.Model):
    """One state change of a release: who, when, why, and the evidence that decided it."""

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="transitions")
    from_state = models.CharField(max_length=20)
    to_state = models.CharField(max_length=20)
    event = models.CharField(max_length=20)
    wave = models.IntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150)
    at = models.DateTimeField()
    reason = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["release_id", "at", "id"]

    def __str__(self) -> str:
        return f"release {self.release_id}: {self.from_state} -> {self.to_state}"


class GateResult(models.Model):
    """One gate's verdict at one stage (submission, before wave k, or a canary measurement)."""

    OUTCOME_CHOICES = [(o, o) for o in GATE_OUTCOMES]

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="gate_results")
    gate = models.CharField(max_length=40)
    stage = models.CharField(max_length=20, help_text="submission, wave:<k>, canary:<k>, resume")
    outcome = models.CharField(max_length=14, choices=OUTCOME_CHOICES)
    evidence = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["release_id", "at", "id"]
        indexes = [models.Index(fields=["release", "gate"], name="gate_result_by_gate")]

    def __str__(self) -> str:
        return f"release {self.release_id} {self.gate}@{self.stage}: {self.outcome}"


class ReleaseApproval(models.Model):
    """One person's decision on a release: approve or reject, with a comment. Once per person."""

    DECISIONS = [("approve", "approve"), ("reject", "reject")]

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="approvals")
    approver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approver_name = models.CharField(max_length=150)
    decision = models.CharField(max_length=8, choices=DECISIONS)
    comment = models.TextField()
    at = models.DateTimeField()

    class Meta:
        ordering = ["release_id", "at", "id"]
        constraints = [models.UniqueConstraint(fields=["release", "approver"], name="release_approval_once")]

    def __str__(self) -> str:
        return f"{self.approver_name} {self.decision}d release {self.release_id}"


class ReleaseRollback(models.Model):
    """A rollback: its trigger and evidence, and the revision each touched gateway got back.

    `gateway_revisions` maps gateway id -> the rollback revision; `acknowledged_at` is set once every
    one of them reports running it (ACK or heartbeat).
    """

    TRIGGER_CHOICES = [(t, t) for t in ROLLBACK_TRIGGERS]

    release = models.ForeignKey(Release, on_delete=models.CASCADE, related_name="rollbacks")
    trigger = models.CharField(max_length=14, choices=TRIGGER_CHOICES)
    actor_name = models.CharField(max_length=150)
    reason = models.TextField()
    evidence = models.JSONField(default=dict, blank=True)
    gateway_revisions = models.JSONField(default=dict)
    skipped = models.JSONField(default=dict, blank=True, help_text="gateway id -> why it was not rolled back")
    at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"rollback of release {self.release_id} ({self.trigger})"


class WebhookSecret(models.Model):
    """A bearer secret Alertmanager presents on the webhook. Stored as a sha256 hash; shown once."""

    name = models.SlugField(max_length=63, unique=True)
    secret_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_by_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AlertReceipt(models.Model):
    """One alert Alertmanager delivered to the webhook, and what it did.

    An alert naming a service with releases rolling out gets one row per such release, saying
    whether it rolled that release back (`acted`, with the rollback) and why or why not; any other
    alert gets one row without a release saying why nothing was judged.
    """

    received_at = models.DateTimeField()
    received_by = models.CharField(max_length=150, help_text="alertmanager:<secret name>, or the operator")
    receiver = models.CharField(max_length=200, blank=True)
    group_key = models.TextField(blank=True)
    status = models.CharField(max_length=10)
    alertname = models.CharField(max_length=200, blank=True)
    service = models.CharField(max_length=200, blank=True, help_text="the service or slo_service label")
    severity = models.CharField(max_length=63, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    labels = models.JSONField(default=dict)
    annotations = models.JSONField(default=dict, blank=True)
    release = models.ForeignKey(
        Release, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_receipts"
    )
    acted = models.BooleanField(default=False)
    reason = models.TextField()
    rollback = models.ForeignKey(
        ReleaseRollback, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["release", "received_at"], name="alert_receipt_by_release"),
            models.Index(fields=["service", "received_at"], name="alert_receipt_by_service"),
        ]

    def __str__(self) -> str:
        verdict = "acted" if self.acted else "did not act"
        return f"alert {self.alertname or '?'} for {self.service or '?'} ({verdict})"
