"""Status corrections (maintenance windows): the document and every version of it.

`spec` is the latest version; `effective_spec` the version in force (the one that excludes
minutes). They differ while an edit waits for an approver; `effective_spec` is null before a new
correction is approved and after deletion. `span_start`/`span_end` bound the effective minutes
(`span_end` null: an open-ended recurrence) so the budget feed reads only corrections that can
touch the minutes it writes.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

STATES = ("active", "pending_approval", "rejected", "deleted")


class Correction(models.Model):
    spec = models.JSONField()
    version = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=20, choices=[(s, s) for s in STATES])
    effective_spec = models.JSONField(null=True, blank=True)
    effective_version = models.PositiveIntegerField(null=True, blank=True)
    span_start = models.DateTimeField(null=True, blank=True)
    span_end = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    # Why the latest version needed an approver (the pages it would hide); empty when it did not.
    approval_reason = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by_name = models.CharField(max_length=150, blank=True)
    # When the effective version took effect (created, or approved).
    applied_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["span_start", "span_end"], name="correction_effective_span")]

    def __str__(self) -> str:
        return f"correction {self.pk} v{self.version} ({self.state})"


class CorrectionVersion(models.Model):
    """An immutable version of a correction document, with who wrote and who approved it."""

    correction = models.ForeignKey(Correction, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    spec = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150)
    note = models.TextField(blank=True)
    approval_reason = models.TextField(blank=True)
    approved_by_name = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["correction_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["correction", "version"], name="correction_version_unique")
        ]

    def __str__(self) -> str:
        return f"correction {self.correction_id} v{self.version}"
