from __future__ import annotations

from rest_framework import serializers

from slo.models import Service, Slo, SloVersion


class ServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "display_name",
            "description",
            "service_class",
            "owner",
            "labels",
            "tiers",
            "multi_tenant",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ServiceWriteSerializer(serializers.Serializer):
    """Documented shape of a service write; validation itself is the pure ServiceSpec."""

    name = serializers.SlugField(max_length=63)
    display_name = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    service_class = serializers.ChoiceField(choices=[c for c, _ in Service.CLASS_CHOICES])
    owner = serializers.CharField(required=False, allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    tiers = serializers.ListField(
        child=serializers.ChoiceField(choices=["edge", "private_cloud", "public_cloud"])
    )
    multi_tenant = serializers.BooleanField(required=False)


class SloSerializer(serializers.ModelSerializer):
    service = serializers.CharField(source="service.name", read_only=True)
    tier = serializers.ChoiceField(
        choices=["edge", "private_cloud", "public_cloud", ""],
        read_only=True,
        help_text="blank: the SLO covers every tier of the service",
    )

    class Meta:
        model = Slo
        fields = [
            "id",
            "service",
            "name",
            "tier",
            "sli_kind",
            "objective",
            "version",
            "spec",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SloWriteSerializer(serializers.Serializer):
    """An SLO document (see GET /api/v1/slos/schema/) plus an optional change note.

    On update, `parent_version` makes the edit conditional: 409 if someone else edited first.
    """

    name = serializers.CharField()
    service = serializers.CharField()
    sli = serializers.DictField()
    objective = serializers.FloatField()
    window = serializers.DictField()
    tier = serializers.CharField(required=False, allow_null=True)
    display_name = serializers.CharField(required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    budgeting_method = serializers.CharField(required=False)
    timeslice_target = serializers.FloatField(required=False, allow_null=True)
    min_valid_events = serializers.IntegerField(required=False)
    alert_tiers = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True)
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    note = serializers.CharField(required=False, allow_blank=True)
    parent_version = serializers.IntegerField(required=False)


class SloVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = SloVersion
        fields = ["version", "spec", "author_name", "note", "restored_from", "created_at"]
        read_only_fields = fields


class SloRestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, allow_blank=True)


class ChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class DiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = ChangeSerializer(many=True)
