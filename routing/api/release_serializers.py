"""Serializers of the release API: read shapes, and request shapes for the OpenAPI schema only
(writes are validated by the routing.releases services: lifecycle, model_versions, service_settings)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from routing.models.releases import (
    RELEASE_KINDS,
    AlertReceipt,
    GateResult,
    ModelVersion,
    Release,
    ReleaseApproval,
    ReleaseGateway,
    ReleaseRollback,
    ReleaseSettings,
    ReleaseTransition,
    WebhookSecret,
)
from routing.releases import selectors
from routing.releases.machine import DRAFT, allowed_events

RECENT_ALERTS = 50


class ModelVersionSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    label = serializers.CharField(read_only=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "service",
            "name",
            "version",
            "label",
            "description",
            "training_data_snapshot",
            "fine_tuning_source",
            "quantization",
            "artifact_digest",
            "rollback_target",
            "created_by_name",
            "created_at",
            "deployed_at",
        ]
        read_only_fields = fields


class ModelVersionWriteSerializer(serializers.Serializer):
    service = serializers.CharField(help_text="service name or id (create only)")
    name = serializers.SlugField(help_text="create only")
    version = serializers.CharField(help_text="create only")
    description = serializers.CharField(required=False, allow_blank=True)
    training_data_snapshot = serializers.CharField(help_text="create only")
    fine_tuning_source = serializers.CharField(required=False, allow_blank=True, help_text="create only")
    quantization = serializers.DictField(required=False, help_text="create only")
    artifact_digest = serializers.RegexField(r"^sha256:[0-9a-f]{64}$", help_text="create only")
    rollback_target = serializers.IntegerField(required=False, allow_null=True)


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseTransition
        fields = ["from_state", "to_state", "event", "wave", "actor_name", "at", "reason", "evidence"]
        read_only_fields = fields


class GateResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = GateResult
        fields = ["gate", "stage", "outcome", "evidence", "at"]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseApproval
        fields = ["approver_name", "decision", "comment", "at"]
        read_only_fields = fields


class TargetSerializer(serializers.ModelSerializer):
    gateway_name = serializers.CharField(source="gateway.name", read_only=True)

    class Meta:
        model = ReleaseGateway
        fields = ["gateway", "gateway_name", "wave", "baseline_revision", "release_revision", "touched_at"]
        read_only_fields = fields


class RollbackSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseRollback
        fields = [
            "id",
            "trigger",
            "actor_name",
            "reason",
            "evidence",
            "gateway_revisions",
            "skipped",
            "at",
            "acknowledged_at",
        ]
        read_only_fields = fields


class WaveSerializer(serializers.Serializer):
    percent = serializers.FloatField(help_text="effective cumulative share of the target gateways")
    requested_percent = serializers.FloatField(required=False, help_text="the share asked for")
    bake_s = serializers.IntegerField()
    gateway_ids = serializers.ListField(child=serializers.IntegerField(), required=False)


class ReleaseSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    routing_policy_version = serializers.IntegerField(
        source="routing_policy_version.version", allow_null=True, read_only=True, default=None
    )
    cache_config_version = serializers.IntegerField(
        source="cache_config_version.version", allow_null=True, read_only=True, default=None
    )
    model_version = serializers.SerializerMethodField()
    waves = WaveSerializer(many=True, read_only=True)
    allowed_events = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id",
            "service",
            "kind",
            "state",
            "title",
            "reason",
            "author_name",
            "routing_policy_version",
            "cache_config_version",
            "model_version",
            "target_selector",
            "wave_plan",
            "waves",
            "required_approvals",
            "current_wave",
            "wave_phase",
            "wave_started_at",
            "bake_started_at",
            "rollout_started_at",
            "paused_from",
            "paused_reason",
            "paused_stage",
            "overrides",
            "allowed_events",
            "created_at",
            "updated_at",
            "submitted_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_model_version(self, release: Release) -> dict[str, Any] | None:
        model = release.model_version
        return None if model is None else {"id": model.pk, "label": model.label}

    def get_allowed_events(self, release: Release) -> list[str]:
        return allowed_events(release.state, paused_from=release.paused_from or None)


class WaveSizeSerializer(serializers.Serializer):
    requested_percent = serializers.FloatField()
    percent = serializers.FloatField(help_text="effective cumulative share")
    gateways = serializers.IntegerField(help_text="gateways in this wave (0 when dropped)")
    cumulative_gateways = serializers.IntegerField()
    bake_s = serializers.IntegerField()
    dropped = serializers.BooleanField(help_text="earlier waves already reach every gateway")


class WavePreviewSerializer(serializers.Serializer):
    gateways = serializers.IntegerField(help_text="gateways the target matches now")
    gateway_ids = serializers.ListField(child=serializers.IntegerField())
    waves = WaveSizeSerializer(many=True)
    first_wave_larger_than_requested = serializers.BooleanField()
    confirmed = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.DictField(), required=False)


class AlertReceiptSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertReceipt
        fields = [
            "id",
            "received_at",
            "received_by",
            "receiver",
            "status",
            "alertname",
            "service",
            "severity",
            "starts_at",
            "fingerprint",
            "labels",
            "annotations",
            "release",
            "acted",
            "reason",
            "rollback",
        ]
        read_only_fields = fields


class ReleaseDetailSerializer(ReleaseSerializer):
    transitions = TransitionSerializer(many=True, read_only=True)
    gate_results = GateResultSerializer(many=True, read_only=True)
    approvals = ApprovalSerializer(many=True, read_only=True)
    targets = TargetSerializer(many=True, read_only=True)
    rollbacks = RollbackSerializer(many=True, read_only=True)
    wave_preview = serializers.SerializerMethodField(
        help_text="drafts: the waves on the gateways the target matches now (null once submitted: see waves)"
    )
    alerts_received = serializers.SerializerMethodField(
        help_text=f"the newest {RECENT_ALERTS} Alertmanager alerts judged against this release"
    )

    class Meta(ReleaseSerializer.Meta):
        fields = [
            *ReleaseSerializer.Meta.fields,
            "wave_sizes_confirmed_for",
            "wave_preview",
            "transitions",
            "gate_results",
            "approvals",
            "targets",
            "rollbacks",
            "alerts_received",
        ]
        read_only_fields = fields

    @extend_schema_field(WavePreviewSerializer(allow_null=True))
    def get_wave_preview(self, release: Release) -> dict[str, Any] | None:
        if release.state != DRAFT:
            return None
        return selectors.wave_preview(release=release, confirmed_for=release.wave_sizes_confirmed_for)

    @extend_schema_field(AlertReceiptSerializer(many=True))
    def get_alerts_received(self, release: Release) -> list[dict[str, Any]]:
        rows = release.alert_receipts.order_by("-received_at", "-id")[:RECENT_ALERTS]
        return AlertReceiptSerializer(rows, many=True).data


class TargetSelectorSerializer(serializers.Serializer):
    tier = serializers.ChoiceField(choices=["edge", "private_cloud", "public_cloud"], required=False)
    region = serializers.CharField(required=False)
    labels = serializers.DictField(
        child=serializers.CharField(),
        required=False,
        help_text="gateways carrying all these labels; keys are plain names (letters, digits, _ . -, no __)",
    )
    gateways = serializers.ListField(child=serializers.IntegerField(), required=False)


class WavePlanSerializer(serializers.Serializer):
    percent = serializers.FloatField(help_text="cumulative share of the target gateways")
    bake_s = serializers.IntegerField(help_text="seconds of canary analysis after every gateway ACKed")


class ReleaseWriteSerializer(serializers.Serializer):
    service = serializers.CharField()
    kind = serializers.ChoiceField(choices=list(RELEASE_KINDS), default="normal")
    title = serializers.CharField(required=False, allow_blank=True)
    reason = serializers.CharField(
        required=False, allow_blank=True, help_text="required for hotfix and rollback"
    )
    routing_policy_version = serializers.IntegerField(
        required=False, help_text="version number of the service's policy"
    )
    cache_config_version = serializers.IntegerField(required=False)
    model_version = serializers.IntegerField(required=False, help_text="model registry id")
    target = TargetSelectorSerializer(required=False)
    waves = WavePlanSerializer(many=True, required=False, help_text="default 5%/600 s, 25%/900 s, 100%/0 s")
    confirm_wave_sizes = serializers.BooleanField(
        required=False,
        default=False,
        help_text="accept a first wave bigger than asked (whole gateways, at least one); else 400",
    )


class SubmitSerializer(serializers.Serializer):
    confirm_wave_sizes = serializers.BooleanField(
        required=False,
        default=False,
        help_text="accept a first wave bigger than asked on the gateways resolved now",
    )


class CommentSerializer(serializers.Serializer):
    comment = serializers.CharField()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField()


class ReleaseSettingsSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)

    class Meta:
        model = ReleaseSettings
        fields = ["service", "required_approvals", "canary", "alert_severities", "updated_at"]
        read_only_fields = ["service", "updated_at"]


class WebhookSecretSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookSecret
        fields = ["id", "name", "hint", "created_by_name", "created_at", "last_used_at"]
        read_only_fields = fields


class WebhookSecretCreatedSerializer(WebhookSecretSerializer):
    secret = serializers.CharField(read_only=True, help_text="shown once")

    class Meta(WebhookSecretSerializer.Meta):
        fields = [*WebhookSecretSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookSecretWriteSerializer(serializers.Serializer):
    name = serializers.SlugField()


class AlertDecisionSerializer(serializers.Serializer):
    alertname = serializers.CharField()
    service = serializers.CharField()
    fingerprint = serializers.CharField()
    release = serializers.IntegerField(allow_null=True)
    acted = serializers.BooleanField()
    reason = serializers.CharField()


class AlertmanagerResultSerializer(serializers.Serializer):
    alerts = serializers.IntegerField(help_text="alerts received (each recorded)")
    services = serializers.ListField(child=serializers.CharField())
    rolled_back = serializers.ListField(child=serializers.IntegerField())
    decisions = AlertDecisionSerializer(many=True)


class ProvenanceSerializer(serializers.Serializer):
    gateway = serializers.DictField()
    at = serializers.DateTimeField()
    basis = serializers.CharField()
    revision = serializers.IntegerField(allow_null=True)
    routing_policy = serializers.DictField(required=False, allow_null=True)
    cache_config = serializers.DictField(required=False, allow_null=True)
    model_version = serializers.DictField(required=False, allow_null=True)
    release = serializers.DictField(required=False, allow_null=True)


class ProvenanceRouteRequestSerializer(serializers.Serializer):
    gateway = serializers.IntegerField()
    at = serializers.DateTimeField()
    context = serializers.DictField(
        help_text="the request context (confidence, priority, network_quality, ...)"
    )


class ProvenanceRouteSerializer(serializers.Serializer):
    provenance = ProvenanceSerializer()
    context = serializers.DictField()
    decision = serializers.DictField()
    routes = serializers.ListField(child=serializers.CharField())
    explanation = serializers.ListField(child=serializers.CharField())
