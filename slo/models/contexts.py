"""Request-context samples pushed by gateways: what the traffic a routing policy decides looks like.

See slo/telemetry/contexts.py (the push format) and docs/telemetry.md, "Request contexts".
"""

from __future__ import annotations

from django.db import models


class ContextSample(models.Model):
    """The request contexts one gateway's routing decisions saw in one minute: a uniform sample of at
    most `slo.telemetry.contexts.MAX_CONTEXTS_PER_MINUTE`, and `requests`, how many requests it was
    drawn from (each sampled context stands for requests / len(contexts) of them).

    Service, tier and region are the gateway's registration, not the sender's claim. A re-sent
    minute replaces the stored one only when it stands for at least as many requests: the minute in
    progress is sent again as it fills, and a replayed older sample never undoes a fuller one.
    """

    pk = models.CompositePrimaryKey("service", "minute", "source")
    service = models.CharField(max_length=63)
    minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    source = models.CharField(max_length=100)
    tier = models.CharField(max_length=20, blank=True)
    region = models.CharField(max_length=63, blank=True)
    requests = models.BigIntegerField()
    contexts = models.JSONField(default=list)

    class Meta:
        # retention deletes by time; reads go by (service, minute), the primary key's prefix
        indexes = [models.Index(fields=["minute"], name="context_sample_by_time")]

    def __str__(self) -> str:
        return f"{len(self.contexts)} contexts of {self.service} minute {self.minute} from {self.source}"
