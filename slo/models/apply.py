"""SLOs as code: which apply source (a directory in git) manages which SLO."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from slo.models.catalog import Slo


class SloSource(models.Model):
    """A named directory of OpenSLO files applied with `slo_apply` or the apply endpoint."""

    name = models.SlugField(max_length=63, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SloManagedBy(models.Model):
    """The apply source managing an SLO; an SLO without one was made outside any directory."""

    slo = models.OneToOneField(Slo, on_delete=models.CASCADE, related_name="managed_by")
    source = models.ForeignKey(SloSource, on_delete=models.PROTECT, related_name="slos")
    since = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.slo_id} managed by {self.source_id}"
