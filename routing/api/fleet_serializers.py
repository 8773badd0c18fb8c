"""Serializers of the fleet API: read shapes, and request shapes for the OpenAPI schema only
(writes go through routing.fleet.services, which validates)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from routing.fleet.credentials import DEFAULT_ROTATION_GRACE_S, MAX_ROTATION_GRACE_S
from routing.fleet.health import HEALTH_STATES
from routing.fleet.selectors import gateway_health_of
from routing.models.fleet import KIND_CHOICES, TIER_CHOICES, Delivery, Gateway, GatewayRevision


class GatewaySerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    # a URL, or blank for a poll-only gateway (a plain string in the schema: "" is no "uri")
    push_url = serializers.CharField(
        read_only=True, help_text="where signed config pushes go; blank: poll only"
    )
    health = serializers.SerializerMethodField()
    last_nack = serializers.SerializerMethodField()

    class Meta:
        model = Gateway
        fields = [
            "id",
            "name",
            "kind",
            "adapter",
            "service",
            "tier",
            "region",
            "labels",
            "push_url",
            "token_hint",
            "desired_revision",
            "applied_revision",
            "applied_etag",
            "last_heartbeat_at",
            "device_health",
            "last_nack",
            "health",
            "previous_token_expires_at",
            "previous_token_last_used_at",
            "previous_signing_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "previous_token_expires_at": {
                "help_text": "end of the rotation grace window of the previous token"
            },
            "previous_token_last_used_at": {
                "help_text": "when the previous token last authenticated (to the minute): null since the rotation "
                "means the gateway moved to its new token"
            },
            "previous_signing_secret_expires_at": {
                "help_text": "until then pushes also carry a signature under the previous secret"
            },
        }

    def get_health(self, gateway: Gateway) -> str:
        now = self.context.get("now") or timezone.now()
        return gateway_health_of(gateway, now=now)

    def get_last_nack(self, gateway: Gateway) -> dict[str, Any] | None:
        if gateway.last_nack_revision is None:
            return None
        return {
            "revision": gateway.last_nack_revision,
            "error": gateway.last_nack_error,
            "at": gateway.last_nack_at,
        }


class GatewayWriteSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=63, help_text="fixed after registration")
    service = serializers.CharField(help_text="service name or id")
    tier = serializers.ChoiceField(choices=TIER_CHOICES)
    region = serializers.CharField(required=False, allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    push_url = serializers.URLField(required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=KIND_CHOICES, required=False, help_text="fixed after registration")
    adapter = serializers.DictField(
        required=False, help_text="litellm-proxy: proxy_url, deployments, failure"
    )
    adapter_secret = serializers.CharField(
        required=False, write_only=True, help_text="litellm-proxy: the proxy's master key (stored encrypted)"
    )


class GatewayCompiledSerializer(serializers.Serializer):
    kind = serializers.CharField()
    desired_revision = serializers.IntegerField(allow_null=True)
    applied_revision = serializers.IntegerField(allow_null=True)
    compiled = serializers.DictField(
        allow_null=True, help_text="the gateway's own config for the desired revision"
    )
    not_enforced = serializers.ListField(
        child=serializers.DictField(), help_text="what this kind does not enforce"
    )
    problems = serializers.ListField(child=serializers.DictField())
    running = serializers.DictField(allow_null=True, help_text="read back from the running gateway")
    read_back_error = serializers.CharField(allow_null=True)
    diff = serializers.CharField(help_text="unified diff, running -> desired")
    in_sync = serializers.BooleanField(allow_null=True)


class GatewayCreatedSerializer(GatewaySerializer):
    token = serializers.CharField(read_only=True, help_text="shown once; the gateway's API credential")
    signing_secret = serializers.CharField(read_only=True, help_text="shown once; verifies config pushes")

    class Meta(GatewaySerializer.Meta):
        fields = [*GatewaySerializer.Meta.fields, "token", "signing_secret"]
        read_only_fields = fields


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing coerced into one: DRF's IntegerField takes "60" and 60.0, and for a
    security window a string or a fraction is a caller's mistake worth a 400."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class RotateSerializer(serializers.Serializer):
    token = serializers.BooleanField(default=True)
    signing_secret = serializers.BooleanField(default=True)
    grace_seconds = StrictIntegerField(
        default=DEFAULT_ROTATION_GRACE_S,
        min_value=0,
        max_value=MAX_ROTATION_GRACE_S,
        help_text="how long the replaced token and secret keep working (seconds, at most 7 days); "
        "0 retires them at once",
    )


class RotatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    token = serializers.CharField(allow_null=True, help_text="shown once; null if not rotated")
    signing_secret = serializers.CharField(allow_null=True, help_text="shown once; null if not rotated")
    grace_seconds = serializers.IntegerField()
    grace_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="until when the replaced credentials still work; null: no grace window"
    )


class GatewayRevisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = GatewayRevision
        fields = ["revision", "bundle", "reason", "release_id", "rollback", "actor_name", "created_at"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    revision = serializers.IntegerField(source="revision.revision", read_only=True)
    priority = serializers.CharField(source="get_priority_display", read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "revision",
            "state",
            "priority",
            "attempts",
            "next_attempt_at",
            "claimed_at",
            "finished_at",
            "last_error",
            "created_at",
        ]
        read_only_fields = fields


class BundleSerializer(serializers.Serializer):
    revision = serializers.IntegerField()
    service = serializers.CharField()
    routing_policy = serializers.DictField()
    cache_config = serializers.DictField()
    model_version = serializers.CharField(allow_null=True)


class HeartbeatSerializer(serializers.Serializer):
    applied_revision = serializers.IntegerField(allow_null=True, min_value=0)
    config_etag = serializers.CharField(required=False, allow_blank=True, max_length=40)
    health = serializers.DictField(
        required=False, help_text="device health: temperature_c, memory_headroom_pct, ..."
    )
    nack = serializers.DictField(required=False, help_text="{revision, error} of a rejected revision")


class HeartbeatAnswerSerializer(serializers.Serializer):
    desired_revision = serializers.IntegerField(allow_null=True)
    desired_etag = serializers.CharField(allow_null=True)


class TelemetryAcceptedSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()
    result = serializers.JSONField(required=False)


class VersionSpreadSerializer(serializers.Serializer):
    tier = serializers.CharField()
    region = serializers.CharField()
    applied_revisions = serializers.DictField(child=serializers.IntegerField())
    distinct = serializers.IntegerField()


class FleetSummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_health = serializers.DictField(
        child=serializers.IntegerField(), help_text=f"keys: {', '.join(HEALTH_STATES)}"
    )
    version_spread = VersionSpreadSerializer(many=True)


class FleetSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    summary = FleetSummarySerializer()
    results = GatewaySerializer(many=True)
