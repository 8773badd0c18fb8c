"""The SLO catalog: inference services, their SLOs and every SLO version."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from slo.spec import SERVICE_CLASSES, SLI_KINDS, TIERS


class Service(models.Model):
    """An inference workload, e.g. `shelf-vision`, running on one or more tiers."""

    CLASS_CHOICES = [(c, c.replace("_", " ")) for c in SERVICE_CLASSES]

    name = models.SlugField(max_length=63, unique=True)
    display_name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    service_class = models.CharField(max_length=20, choices=CLASS_CHOICES)
    owner = models.CharField(max_length=200, blank=True, help_text="team or person responsible")
    labels = models.JSONField(default=dict, blank=True)
    tiers = models.JSONField(default=list, help_text=f"subset of {list(TIERS)}")
    multi_tenant = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Slo(models.Model):
    """One SLO. `spec` is the current version's document; columns mirror it for queries."""

    KIND_CHOICES = [(k, k) for k in SLI_KINDS]
    TIER_CHOICES = [(t, t) for t in TIERS]

    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="slos")
    name = models.SlugField(max_length=63)
    tier = models.CharField(max_length=20, choices=TIER_CHOICES, blank=True)
    sli_kind = models.CharField(max_length=20, choices=KIND_CHOICES)
    objective = models.FloatField(help_text="percent, e.g. 99.9")
    spec = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["service__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["service", "name"], name="slo_unique_name_per_service")
        ]

    def __str__(self) -> str:
        return f"{self.service.name}/{self.name}"


class SloVersion(models.Model):
    """An immutable version of an SLO document. Restores add a new version."""

    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="versions")
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
        ordering = ["slo_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["slo", "version"], name="slo_version_unique")]

    def __str__(self) -> str:
        return f"{self.slo_id} v{self.version}"
