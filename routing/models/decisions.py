"""Per-request decision records: what a gateway's policy did with one sampled request."""

from __future__ import annotations

from django.db import models


class DecisionRecord(models.Model):
    """One sampled request of one gateway: the rule that matched, the route chain, the cache
    lookups with their key fields, the model version and bundle revision, outcome and latency.

    Filed under the gateway's registration (service, tier, region) at ingest, never the sender's
    claim. `minute` (epoch minutes, UTC) joins the record to the SLI minute it fell in. Re-sent
    records are ignored: (gateway, request_id) is unique.
    """

    # No database constraint: the ingest path is a bulk insert, and retention, not cascades,
    # removes records; a gateway's records outlive its deletion until they age out.
    gateway = models.ForeignKey(
        "routing.Gateway", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False
    )
    service = models.CharField(max_length=63)
    tier = models.CharField(max_length=20)
    region = models.CharField(max_length=63, blank=True)
    request_id = models.CharField(max_length=64)
    at = models.DateTimeField()
    minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    rule = models.CharField(max_length=128, blank=True)
    admission = models.CharField(max_length=128, blank=True)
    chain = models.JSONField(default=list)
    route = models.CharField(max_length=64)
    cache = models.JSONField(default=list)
    model_version = models.CharField(max_length=128, blank=True)
    revision = models.PositiveIntegerField(null=True, blank=True, help_text="bundle revision the gateway ran")
    outcome = models.CharField(max_length=10)
    latency_ms = models.FloatField()

    class Meta:
        # request_id first: the unique index also serves the search by request id (one index
        # fewer to maintain on the ingest path).
        constraints = [
            models.UniqueConstraint(fields=["request_id", "gateway"], name="decision_record_unique_request"),
        ]
        indexes = [
            models.Index(fields=["service", "at"], name="decision_by_service_time"),
            models.Index(fields=["at"], name="decision_by_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} on gateway {self.gateway_id}"
