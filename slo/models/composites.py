"""Composite SLOs: the document and its versions, the current members, and the evaluated status."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from slo.models.catalog import Service, Slo


class Composite(models.Model):
    """One composite SLO. `spec` is the current version's document; columns mirror it for queries."""

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="composites")
    name = models.SlugField(max_length=63)
    aggregation = models.CharField(max_length=20)
    objective = models.FloatField(help_text="percent, e.g. 99.0")
    spec = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="composite_unique_name_per_service")
        ]

    def __str__(self) -> str:
        return f"{self.service.name}/{self.name} (composite)"


class CompositeMember(models.Model):
    """A member of the current version, resolved to its SLO row when the version was written (so a
    member SLO renamed later stays the same member)."""

    composite = models.ForeignKey(Composite, on_delete=models.CASCADE, related_name="members")
    slo = models.ForeignKey(Slo, on_delete=models.PROTECT, related_name="composite_memberships")
    position = models.PositiveSmallIntegerField()
    weight = models.FloatField()

    class Meta:
        ordering = ["composite_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["composite", "slo"], name="composite_member_once"),
            models.UniqueConstraint(fields=["composite", "position"], name="composite_member_position"),
        ]

    def __str__(self) -> str:
        return f"composite {self.composite_id} member {self.position}: SLO {self.slo_id}"


class CompositeVersion(models.Model):
    """An immutable version of a composite document. Restores add a new version."""

    composite = models.ForeignKey(Composite, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    restored_from = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["composite_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["composite", "version"], name="composite_version_unique")
        ]

    def __str__(self) -> str:
        return f"composite {self.composite_id} v{self.version}"


class CompositeStatus(models.Model):
    """The latest evaluation of one composite; `evaluated_at` is the claim watermark, as for SLOs."""

    composite = models.OneToOneField(
        Composite, on_delete=models.CASCADE, primary_key=True, related_name="status"
    )
    evaluated_at = models.DateTimeField(null=True, blank=True)
    composite_version = models.PositiveIntegerField(default=0)
    sli = models.FloatField(null=True)
    data_quality = models.CharField(max_length=24, default="no_data")
    error_budget_total = models.FloatField(null=True, help_text="journey events x (1 - objective)")
    error_budget_consumed = models.FloatField(null=True)
    error_budget_remaining = models.FloatField(null=True, help_text="ratio; negative once overspent")
    burn_rates = models.JSONField(default=dict, help_text="window -> burn rate (null without data)")
    windows = models.JSONField(default=dict, help_text="window -> sums, data quality and members")
    tiers = models.JSONField(default=list, help_text="alert tiers with their evidence")
    alert_state = models.CharField(max_length=10, default="unknown")
    time_to_exhaustion_s = models.FloatField(null=True)
    time_to_exhaustion_basis = models.CharField(max_length=16, default="no_data")
    period_start = models.DateTimeField(null=True)
    period_end = models.DateTimeField(null=True)
    members_without_data = models.JSONField(default=list, help_text="member SLOs without data in the period")

    def __str__(self) -> str:
        return f"status of composite {self.composite_id} at {self.evaluated_at}"


class CompositeStatusPoint(models.Model):
    """Status history for charts, every 5 minutes: with each member's contribution to the 1h burn."""

    pk = models.CompositePrimaryKey("composite_id", "at")
    composite = models.ForeignKey(Composite, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    at = models.DateTimeField()
    sli = models.FloatField(null=True)
    burn_rate_1h = models.FloatField(null=True)
    error_budget_remaining = models.FloatField(null=True)
    alert_state = models.CharField(max_length=10)
    data_quality = models.CharField(max_length=24)
    contributions_1h = models.JSONField(default=dict, help_text="member SLO id -> burn-rate contribution")

    def __str__(self) -> str:
        return f"composite {self.composite_id} at {self.at}"
