"""Serializers of the budget API. They shape output and document input; validation is in services."""

from __future__ import annotations

from urllib.parse import urlparse

from rest_framework import serializers

from slo.models.budget import (
    AlertEvent,
    BudgetPolicy,
    CostModel,
    CostRollup,
    Notification,
    NotificationChannel,
)


class SloStatusSerializer(serializers.Serializer):
    """The document of `slo.budget.selectors.slo_status_document` plus open burn-rate alerts."""

    slo = serializers.IntegerField()
    evaluated_at = serializers.DateTimeField()
    slo_version = serializers.IntegerField()
    sli = serializers.FloatField(allow_null=True)
    data_quality = serializers.ChoiceField(choices=["ok", "insufficient_traffic", "no_data"])
    error_budget_total = serializers.FloatField(allow_null=True)
    error_budget_consumed = serializers.FloatField(allow_null=True)
    error_budget_remaining = serializers.FloatField(allow_null=True)
    burn_rates = serializers.DictField(child=serializers.FloatField(allow_null=True))
    windows = serializers.DictField(child=serializers.DictField())
    tiers = serializers.ListField(child=serializers.DictField())
    alert_state = serializers.ChoiceField(choices=["none", "ticket", "page", "unknown"])
    time_to_exhaustion_s = serializers.FloatField(allow_null=True)
    time_to_exhaustion_basis = serializers.CharField()
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    no_data_reason = serializers.DictField(
        allow_null=True,
        help_text="why there is no data (or no traffic): {code, message, since}; null with data",
    )
    alerts = serializers.DictField(child=serializers.DictField(), help_text="severity -> {firing, since}")


class TimeseriesPointSerializer(serializers.Serializer):
    t = serializers.DateTimeField()
    value = serializers.FloatField(allow_null=True)
    valid = serializers.FloatField(required=False)
    data_quality = serializers.CharField(required=False)


class TimeseriesSerializer(serializers.Serializer):
    slo = serializers.IntegerField()
    metric = serializers.CharField()
    resolution = serializers.CharField()
    points = TimeseriesPointSerializer(many=True)


class AlertEventSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    slo_name = serializers.CharField(source="slo.name", read_only=True, default=None)

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "state_key",
            "service",
            "slo",
            "slo_name",
            "kind",
            "severity",
            "state",
            "windows",
            "evidence",
            "at",
            "created_at",
        ]
        read_only_fields = fields


class NotificationChannelSerializer(serializers.ModelSerializer):
    has_secret = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "email_to",
            "services",
            "severities",
            "renotify_interval_s",
            "enabled",
            "has_secret",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_secret(self, obj: NotificationChannel) -> bool:
        return bool(obj.secret_encrypted)

    def get_url(self, obj: NotificationChannel) -> str:
        # Slack-style webhook URLs carry their credential in the path: only admins see it whole.
        if self.context.get("full_urls") or not obj.url:
            return obj.url
        parsed = urlparse(obj.url)
        return f"{parsed.scheme}://{parsed.netloc}/…"


class NotificationChannelWriteSerializer(serializers.Serializer):
    """A channel write. `secret` (generic_webhook signing key) is write-only and never returned."""

    name = serializers.SlugField(max_length=63)
    kind = serializers.ChoiceField(choices=["generic_webhook", "slack", "email", "alertmanager"])
    url = serializers.URLField(required=False, allow_blank=True)
    email_to = serializers.ListField(child=serializers.EmailField(), required=False)
    secret = serializers.CharField(required=False, write_only=True, min_length=16)
    services = serializers.ListField(child=serializers.CharField(), required=False)
    severities = serializers.ListField(
        child=serializers.ChoiceField(choices=["page", "ticket"]), required=False
    )
    renotify_interval_s = serializers.IntegerField(required=False, min_value=0)
    enabled = serializers.BooleanField(required=False)


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = [
            "id",
            "channel",
            "alert_event",
            "reason",
            "state",
            "attempts",
            "next_attempt_at",
            "sent_at",
            "last_error",
            "created_at",
        ]
        read_only_fields = fields


class BudgetPolicySerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True, default=None, allow_null=True)

    class Meta:
        model = BudgetPolicy
        fields = [
            "id",
            "service",
            "low_remaining_ratio",
            "low_extra_approvals",
            "exhausted_remaining_ratio",
            "freeze_allowed_change_kinds",
            "unknown_blocks",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class BudgetPolicyWriteSerializer(serializers.Serializer):
    service = serializers.CharField(required=False, allow_null=True, help_text="null: the default policy")
    low_remaining_ratio = serializers.FloatField(required=False)
    low_extra_approvals = serializers.IntegerField(required=False)
    exhausted_remaining_ratio = serializers.FloatField(required=False)
    freeze_allowed_change_kinds = serializers.ListField(child=serializers.CharField(), required=False)
    unknown_blocks = serializers.BooleanField(required=False)


class BudgetSloSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    remaining = serializers.FloatField(allow_null=True)
    data_quality = serializers.CharField()
    alert_state = serializers.CharField()
    paging = serializers.BooleanField()
    evaluated_at = serializers.DateTimeField(allow_null=True)


class ServiceBudgetStatusSerializer(serializers.Serializer):
    service = serializers.CharField()
    state = serializers.ChoiceField(choices=["ok", "low", "exhausted", "unknown"])
    frozen = serializers.BooleanField()
    required_extra_approvals = serializers.IntegerField()
    allowed_change_kinds = serializers.ListField(child=serializers.CharField())
    reasons = serializers.ListField(child=serializers.CharField())
    policy = serializers.DictField()
    policy_source = serializers.CharField()
    paging_slos = serializers.ListField(child=serializers.CharField())
    data_quality = serializers.CharField()
    slos = BudgetSloSerializer(many=True)
    corrections = serializers.ListField(
        child=serializers.DictField(),
        help_text="status corrections that excluded minutes of these SLOs in their current periods",
    )
    evaluated_at = serializers.DateTimeField()


class CostModelSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username", read_only=True, default=None)

    class Meta:
        model = CostModel
        fields = ["id", "version", "effective_from", "prices", "note", "author", "created_at"]
        read_only_fields = fields


class CostModelWriteSerializer(serializers.Serializer):
    """A new cost model version. `prices`: see slo.budget.cost.Prices."""

    prices = serializers.DictField()
    effective_from = serializers.DateTimeField(required=False)
    note = serializers.CharField(required=False, allow_blank=True)


class CostRollupSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)

    class Meta:
        model = CostRollup
        fields = [
            "id",
            "service",
            "route",
            "resolution",
            "bucket_start",
            "cost_model_version",
            "requests",
            "cost_usd",
            "cost_per_request_usd",
            "figures",
            "computed_at",
        ]
        read_only_fields = fields
