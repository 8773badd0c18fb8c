"""Serializers for routing policies and cache configs. Read shapes are computed by the views
(active gateway counts come from the fleet in bulk and are passed in `context`); write shapes only
document the API: validation is the pure core's."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class DocumentVersionSerializer(serializers.Serializer):
    """One immutable version. `state` is stored (draft, approved, retired); `effective_state` is
    `active` while gateways report running it; `active_gateways` counts them."""

    version = serializers.IntegerField()
    state = serializers.CharField()
    effective_state = serializers.SerializerMethodField()
    active_gateways = serializers.SerializerMethodField()
    document = serializers.JSONField()
    document_sha256 = serializers.CharField()
    author_name = serializers.CharField()
    note = serializers.CharField()
    parent_version = serializers.IntegerField(allow_null=True)
    restored_from = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    warnings = serializers.SerializerMethodField()
    validation_context = serializers.SerializerMethodField()
    approved_by_name = serializers.CharField()
    approved_at = serializers.DateTimeField(allow_null=True)
    retired_at = serializers.DateTimeField(allow_null=True)

    def _active(self, version: Any) -> int:
        return int(self.context.get("active", {}).get((version.line_id, version.version), 0))

    def get_active_gateways(self, version: Any) -> int:
        return self._active(version)

    def get_effective_state(self, version: Any) -> str:
        return "active" if self._active(version) else version.state

    def get_warnings(self, version: Any) -> list[dict[str, str]]:
        return list(version.validation.get("warnings", []))

    def get_validation_context(self, version: Any) -> dict[str, Any]:
        return dict(version.validation.get("context", {}))


class DocumentLineSerializer(serializers.Serializer):
    """A service's document line: its newest version and the versions running on gateways."""

    id = serializers.IntegerField()
    service = serializers.CharField(source="service.name")
    service_class = serializers.CharField(source="service.service_class")
    current_version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    current = serializers.SerializerMethodField()
    active_versions = serializers.SerializerMethodField()

    def get_current(self, line: Any) -> dict[str, Any] | None:
        version = self.context.get("current", {}).get(line.pk)
        return DocumentVersionSerializer(version, context=self.context).data if version is not None else None

    def get_active_versions(self, line: Any) -> dict[str, int]:
        active = self.context.get("active", {})
        return {
            str(number): count
            for (line_id, number), count in sorted(active.items())
            if line_id == line.pk and count
        }


class DocumentWriteSerializer(serializers.Serializer):
    """A document write. Give `document` (a JSON object) or `yaml` (the document as YAML text);
    or send the YAML itself as the body (Content-Type application/yaml) with `note`,
    `parent_version` (and on create `service`) as query parameters. The document's `service`
    field may be left out: it is the line's service."""

    service = serializers.CharField(required=False, help_text="create only: service name or id")
    document = serializers.JSONField(required=False)
    yaml = serializers.CharField(required=False)
    note = serializers.CharField(required=False, allow_blank=True)
    parent_version = serializers.IntegerField(
        required=False, help_text="update only: the version this edit is based on (409 if stale)"
    )


class DocumentValidateSerializer(DocumentWriteSerializer):
    """A dry run: the same body as a write; nothing is stored."""


class DocumentCheckSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.DictField())
    warnings = serializers.ListField(child=serializers.DictField())
    context = serializers.DictField()


class DocumentRestoreSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, allow_blank=True)
    parent_version = serializers.IntegerField(required=False, min_value=1)


class DocumentChangeSerializer(serializers.Serializer):
    path = serializers.CharField()
    kind = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class DocumentDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    changes = DocumentChangeSerializer(many=True)
    summary = serializers.ListField(child=serializers.CharField())


class ExplainSerializer(serializers.Serializer):
    context = serializers.DictField(
        help_text="the request context (confidence, queue_ratio, temperature_c, ...)"
    )
    version = serializers.IntegerField(required=False, min_value=1, help_text="default: the newest version")


class ExplainResultSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    service = serializers.CharField()
    decision = serializers.DictField(
        help_text="admission, reason, rule, rule_index, chain, collapse, batching, trace"
    )
    routes = serializers.ListField(child=serializers.CharField())
    explanation = serializers.ListField(child=serializers.CharField())


class ExplainKeySerializer(serializers.Serializer):
    request = serializers.DictField(
        help_text="the request fields the key hashes (input_hash, model_version, ...)"
    )
    layer = serializers.CharField(
        required=False, help_text="layer name or kind; default: every enabled layer"
    )
    version = serializers.IntegerField(required=False, min_value=1, help_text="default: the newest version")


class ExplainKeyResultSerializer(serializers.Serializer):
    version = serializers.IntegerField()
    service = serializers.CharField()
    keys = serializers.ListField(child=serializers.DictField())


class SimulateSerializer(serializers.Serializer):
    candidate_version = serializers.IntegerField(min_value=1)
    baseline_version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="default: the version on most gateways, else the newest approved",
    )
    recorded = serializers.DictField(
        required=False,
        help_text=(
            'the default: request contexts the gateways recorded, {"n": 2000, "window_minutes": 60, "seed": 0, '
            '"tier": "edge", "region": "eu-west"} (all optional); 409 when fewer than 100 were recorded'
        ),
    )
    contexts = serializers.ListField(
        child=serializers.DictField(), required=False, help_text="a what-if: given contexts"
    )
    generate = serializers.DictField(
        required=False, help_text='a what-if: {"n": 5000, "distribution": {...}, "seed": 1}'
    )
    seed = serializers.IntegerField(required=False)


class SimulateResultSerializer(serializers.Serializer):
    service = serializers.CharField()
    baseline_version = serializers.IntegerField()
    candidate_version = serializers.IntegerField()
    contexts = serializers.DictField()
    slo = serializers.DictField(allow_null=True)
    baseline = serializers.DictField()
    candidate = serializers.DictField()
    route_mix_shift = serializers.DictField(child=serializers.FloatField())
    p95_shift_ms = serializers.DictField(child=serializers.FloatField())
    cost_per_1000_shift_usd = serializers.FloatField()
    bad_ratio_shift = serializers.FloatField()
    budget_burn_shift = serializers.FloatField(allow_null=True)
    route_stats = serializers.DictField(
        help_text="per route: stats, source (measured | assumed) per figure, events"
    )
    window = serializers.DictField()
    assumptions = serializers.ListField(child=serializers.CharField())


class RecommendThresholdSerializer(serializers.Serializer):
    max_false_hit_rate = serializers.FloatField(min_value=0, max_value=1)
    samples = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='[{"similarity": 0.93, "correct": true}, ...]',
    )
    csv = serializers.CharField(required=False, help_text="CSV text with a header: similarity,correct")
    cost_saved_per_hit_usd = serializers.FloatField(required=False, min_value=0)
    layer = serializers.CharField(required=False)
    version = serializers.IntegerField(required=False, min_value=1)


class RecommendThresholdResultSerializer(serializers.Serializer):
    service = serializers.CharField()
    version = serializers.IntegerField()
    max_false_hit_rate = serializers.FloatField()
    recommendation = serializers.DictField(
        help_text="status (ok | insufficient_samples | no_safe_threshold), threshold, expected_hit_rate, "
        "false_hit_rate, cost_saved, table, samples, reason"
    )
    current = serializers.DictField(allow_null=True)
    cost_saved_per_hit = serializers.DictField()
    cost_saved_per_1000_lookups_usd = serializers.FloatField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())
