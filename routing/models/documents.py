"""Routing policies and cache configs as versioned documents.

Each service has at most one routing policy *line* and one cache config *line* (a gateway's
config bundle carries exactly one of each, so named alternatives would only add a choice nobody
can make at delivery time). A line points at its newest version; versions are immutable rows.

A version's lifecycle state is stored (`draft` -> `approved` -> `retired`, or draft -> retired);
whether it is *active* is not stored: it is computed from the fleet (gateways whose applied
revision's bundle carries this version's document, matched by `document_sha256`), because only
the gateways know what they run.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

DRAFT = "draft"
APPROVED = "approved"
RETIRED = "retired"
VERSION_STATES = (DRAFT, APPROVED, RETIRED)


class _DocumentLine(models.Model):
    """The per-service head of a document's history."""

    current_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.service.name} v{self.current_version}"  # type: ignore[attr-defined]


class _DocumentVersion(models.Model):
    """One immutable version: the document as written (JSON, or YAML parsed to JSON), who wrote it,
    on top of which version, and the validation result at write time (errors always empty:
    a document with errors is never stored; warnings are kept)."""

    STATE_CHOICES = [(s, s) for s in VERSION_STATES]

    version = models.PositiveIntegerField()
    document = models.JSONField()
    # sha256 of the canonical JSON of `document`: how the fleet's applied bundles are matched
    document_sha256 = models.CharField(max_length=64, db_index=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    parent_version = models.PositiveIntegerField(null=True, blank=True)
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # {"errors": [...], "warnings": [...], "context": {...}}: what the validator said, and against what
    validation = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=STATE_CHOICES, default=DRAFT)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_name = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class RoutingPolicyDocument(_DocumentLine):
    """The routing policy line of one service."""

    service = models.OneToOneField("slo.Service", on_delete=models.PROTECT, related_name="routing_policy")

    class Meta:
        ordering = ["service__name"]


class RoutingPolicyVersion(_DocumentVersion):
    """An immutable version of a service's routing policy."""

    line = models.ForeignKey(RoutingPolicyDocument, on_delete=models.CASCADE, related_name="versions")

    class Meta:
        ordering = ["line_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["line", "version"], name="routing_policy_version_unique")
        ]

    def __str__(self) -> str:
        return f"routing policy {self.line_id} v{self.version}"


class CacheConfigDocument(_DocumentLine):
    """The cache config line of one service."""

    service = models.OneToOneField("slo.Service", on_delete=models.PROTECT, related_name="cache_config")

    class Meta:
        ordering = ["service__name"]


class CacheConfigVersion(_DocumentVersion):
    """An immutable version of a service's cache config."""

    line = models.ForeignKey(CacheConfigDocument, on_delete=models.CASCADE, related_name="versions")

    class Meta:
        ordering = ["line_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["line", "version"], name="cache_config_version_unique")
        ]

    def __str__(self) -> str:
        return f"cache config {self.line_id} v{self.version}"
