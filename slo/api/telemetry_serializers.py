"""Shapes of the telemetry API. Validation itself is the pure `TelemetrySourceSpec`."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from slo.models.telemetry import TelemetrySource
from slo.spec import TIERS
from slo.telemetry.sources import masked_headers


class TelemetrySourceSerializer(serializers.ModelSerializer):
    """A source with its health and ingest statistics. The secret is never returned."""

    has_secret = serializers.SerializerMethodField()
    headers = serializers.SerializerMethodField(
        help_text="extra request headers; values cut to their first 2 characters (write-only in full)"
    )
    lag_s = serializers.SerializerMethodField(
        help_text="now - watermark, seconds; null before the first pull"
    )
    healthy = serializers.SerializerMethodField(help_text="the last pull succeeded")
    pulling = serializers.SerializerMethodField()

    class Meta:
        model = TelemetrySource
        fields = [
            "id",
            "name",
            "url",
            "tier",
            "region",
            "services",
            "auth_kind",
            "username",
            "has_secret",
            "headers",
            "verify_tls",
            "timeout_s",
            "scrape_lag_s",
            "backfill_minutes",
            "enabled",
            "healthy",
            "pulling",
            "watermark",
            "lag_s",
            "last_attempt_at",
            "last_success_at",
            "last_error",
            "last_error_at",
            "consecutive_failures",
            "samples_ingested",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_secret(self, source: TelemetrySource) -> bool:
        return bool(source.secret_encrypted)

    def get_headers(self, source: TelemetrySource) -> dict[str, str]:
        return masked_headers(source)

    def get_lag_s(self, source: TelemetrySource) -> float | None:
        if source.watermark is None:
            return None
        return round((timezone.now() - source.watermark).total_seconds(), 1)

    def get_healthy(self, source: TelemetrySource) -> bool:
        return source.last_success_at is not None and source.consecutive_failures == 0

    def get_pulling(self, source: TelemetrySource) -> bool:
        return source.pulling_since is not None


class TelemetrySourceWriteSerializer(serializers.Serializer):
    """Create or change a source. `secret` (bearer token or basic password) is write-only: omit it
    on update to keep the stored one; it is stored encrypted and never returned."""

    name = serializers.SlugField(max_length=63)
    url = serializers.URLField(max_length=500)
    tier = serializers.ChoiceField(choices=list(TIERS))
    region = serializers.CharField(required=False, allow_blank=True)
    services = serializers.ListField(child=serializers.CharField(), required=False)
    auth_kind = serializers.ChoiceField(choices=["none", "bearer", "basic"], required=False)
    username = serializers.CharField(required=False, allow_blank=True)
    secret = serializers.CharField(required=False, allow_blank=True, write_only=True)
    headers = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        write_only=True,
        help_text='extra request headers, e.g. {"X-Scope-OrgID": "team-a"}; omit to keep, {} clears',
    )
    verify_tls = serializers.BooleanField(required=False)
    timeout_s = serializers.FloatField(required=False)
    scrape_lag_s = serializers.IntegerField(required=False)
    backfill_minutes = serializers.IntegerField(required=False)
    enabled = serializers.BooleanField(required=False)


class SloMinuteSerializer(serializers.Serializer):
    minute = serializers.DateTimeField()
    good = serializers.IntegerField(allow_null=True, help_text="null when the minute is missing")
    valid = serializers.IntegerField(allow_null=True)
    present = serializers.BooleanField()


class SloMinutesSerializer(serializers.Serializer):
    slo = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    present_minutes = serializers.IntegerField()
    minutes = SloMinuteSerializer(many=True)
