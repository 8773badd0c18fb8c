"""Budget responses: changes the control plane proposes when a service burns its error budget fast,
for a person to approve (docs/capacity.md, "Budget responses")."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

SAFER_CHAIN = "safer_chain"
CACHE_THRESHOLD = "cache_threshold"
MODEL_FREEZE = "model_freeze"
RESPONSE_KINDS = (SAFER_CHAIN, CACHE_THRESHOLD, MODEL_FREEZE)
PROPOSED = "proposed"
APPROVED = "approved"
DISMISSED = "dismissed"
RESPONSE_STATES = (PROPOSED, APPROVED, DISMISSED)


class BudgetResponse(models.Model):
    """One proposed change (a draft document version) with the simulation of its effect. Approving
    it approves the version and writes a draft hotfix release of it; dismissing retires the draft."""

    service = models.ForeignKey("slo.Service", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=[(k, k.replace("_", " ")) for k in RESPONSE_KINDS])
    state = models.CharField(max_length=10, choices=[(s, s) for s in RESPONSE_STATES], default=PROPOSED)
    summary = models.CharField(max_length=500)
    trigger_key = models.CharField(max_length=200, help_text="the burn-rate alert that fired")
    trigger_since = models.DateTimeField()
    trigger = models.JSONField(default=dict)
    line_id = models.PositiveIntegerField(
        null=True, blank=True, help_text="the routing policy line (safer_chain) or cache config line"
    )
    baseline_version = models.PositiveIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(null=True, blank=True, help_text="the draft version proposed")
    hold_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="model_freeze: how long model-version releases are held"
    )
    simulation = models.JSONField(default=dict)
    release = models.ForeignKey(
        "routing.Release", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by_name = models.CharField(max_length=150, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "kind", "trigger_key", "trigger_since"], name="budget_response_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for service {self.service_id} ({self.state})"


class CacheThresholdSamples(models.Model):
    """The newest labelled lookups a person gave the threshold tuning of a cache config line
    (`[[similarity, correct], ...]`): what a cache_threshold budget response estimates its effect on."""

    line = models.OneToOneField(
        "routing.CacheConfigDocument", on_delete=models.CASCADE, related_name="threshold_samples"
    )
    samples = models.JSONField(default=list)
    recorded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"threshold samples of cache line {self.line_id}"
