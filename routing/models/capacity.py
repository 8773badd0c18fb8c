"""Capacity: each gateway's device-health history and the scaling recommendations made from it.

`GatewayHealthSample` is one heartbeat's health report (what the gateway measured: queue, workers,
temperature, memory headroom, backhaul, request age, accelerator use, p95), kept
`CAPACITY_HEALTH_RETENTION_DAYS`. `CapacityRecommendation` is one piece of advice for one device
pool (service, tier, region, pool label) while it holds: opened when the service's autoscaling
rules say so, kept while they keep saying so, cleared only after the pool has been calm for
`CAPACITY_CLEAR_AFTER_S` (the hysteresis that keeps advice from flapping). See docs/capacity.md.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

SCALE_OUT = "scale_out"
SCALE_IN = "scale_in"
OFFLOAD_TO_CLOUD = "offload_to_cloud"
SHIFT_TO_NEARBY = "shift_to_nearby"
WAKE_DORMANT = "wake_dormant"
ACTIONS = (SCALE_OUT, SCALE_IN, OFFLOAD_TO_CLOUD, SHIFT_TO_NEARBY, WAKE_DORMANT)

ACTIVE = "active"
CLEARED = "cleared"


class GatewayHealthSample(models.Model):
    """One heartbeat's device health. Missing measurements are NULL, never zero."""

    id = models.BigAutoField(primary_key=True)
    gateway = models.ForeignKey(
        "routing.Gateway", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    at = models.DateTimeField()
    queue_depth = models.FloatField(null=True)
    active_workers = models.IntegerField(null=True)
    temperature_c = models.FloatField(null=True)
    memory_headroom_pct = models.FloatField(null=True)
    backhaul_rtt_ms = models.FloatField(null=True)
    backhaul_healthy = models.BooleanField(null=True)
    request_age_ms = models.FloatField(null=True)
    accelerator_util_pct = models.FloatField(null=True)
    p95_ms = models.FloatField(null=True)

    class Meta:
        indexes = [
            models.Index(fields=["gateway", "at"], name="health_sample_by_gateway"),
            models.Index(fields=["at"], name="health_sample_by_time"),
        ]

    def __str__(self) -> str:
        return f"gateway {self.gateway_id} health at {self.at}"


class CapacityRecommendation(models.Model):
    """Advice for one device pool: scale out or in by `amount`, offload, shift or wake devices."""

    ACTION_CHOICES = [(a, a.replace("_", " ")) for a in ACTIONS]
    STATE_CHOICES = [(ACTIVE, ACTIVE), (CLEARED, CLEARED)]

    service = models.ForeignKey("slo.Service", on_delete=models.CASCADE, related_name="+")
    tier = models.CharField(max_length=20)
    region = models.CharField(max_length=63, blank=True)
    pool = models.CharField(max_length=63, blank=True)
    action = models.CharField(max_length=20, choices=ACTION_CHOICES)
    amount = models.PositiveIntegerField(help_text="workers to add/remove/move, or devices to wake")
    current_workers = models.PositiveIntegerField(default=0)
    desired_workers = models.PositiveIntegerField(default=0, help_text="what an autoscaler should run")
    reason = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict, help_text="the windows, rules and gateways that decided")
    opening_evidence = models.JSONField(default=dict)
    state = models.CharField(max_length=10, choices=STATE_CHOICES, default=ACTIVE)
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now, help_text="last evaluation that confirmed it")
    calm_since = models.DateTimeField(null=True, blank=True, help_text="first evaluation that did not")
    cleared_at = models.DateTimeField(null=True, blank=True)
    clear_reason = models.CharField(max_length=500, blank=True)
    evaluations = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "tier", "region", "pool", "action"],
                condition=models.Q(state="active"),
                name="capacity_one_active_per_pool_action",
            )
        ]
        indexes = [models.Index(fields=["service", "state", "-opened_at"], name="capacity_by_service")]

    def __str__(self) -> str:
        return f"{self.action} {self.amount} for {self.pool_label} ({self.state})"

    @property
    def pool_label(self) -> str:
        return "/".join((self.tier, self.region or "-", self.pool or "-"))
