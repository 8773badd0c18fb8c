"""Telemetry storage: pull sources, per-minute SLI buckets, their coverage, hourly rollups and the
contract series pushed by gateways.

Time columns are integers: `minute` is whole minutes since the Unix epoch (UTC) and labels the
minute [minute*60, minute*60 + 60) (the same minute `slo.counters` assigns samples to); `hour` is
whole hours since the epoch. Integers keep the bulk paths identical on PostgreSQL and SQLite and
load straight into numpy. See docs/telemetry.md, "Storage and missing data".
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from slo.models.catalog import Slo
from slo.spec import TIERS


class TelemetrySource(models.Model):
    """A Prometheus (or Thanos/Mimir query frontend) the control plane pulls SLIs from.

    It serves the SLOs of its tier (see `slo.telemetry.pull.served_slos`). The secret (a
    bearer token or a basic-auth password) is stored encrypted and never returned. `pulling_since`
    is the claim: a pull sets it with a conditional update, so two workers never pull one source
    at once; a claim older than the lease is treated as abandoned by a dead worker.
    """

    AUTH_NONE = "none"
    AUTH_BEARER = "bearer"
    AUTH_BASIC = "basic"
    AUTH_KINDS = [(AUTH_NONE, "none"), (AUTH_BEARER, "bearer token"), (AUTH_BASIC, "basic auth")]

    name = models.SlugField(max_length=63, unique=True)
    url = models.URLField(max_length=500)
    tier = models.CharField(max_length=20, choices=[(t, t) for t in TIERS])
    region = models.CharField(max_length=63, blank=True)
    services = models.JSONField(default=list, blank=True, help_text="service names; empty = every service")
    auth_kind = models.CharField(max_length=10, choices=AUTH_KINDS, default=AUTH_NONE)
    username = models.CharField(max_length=200, blank=True, help_text="basic auth user")
    secret_encrypted = models.TextField(blank=True)
    # extra request headers (a tenant's X-Scope-OrgID, a proxy's key) as encrypted JSON: write-only
    headers_encrypted = models.TextField(blank=True)
    verify_tls = models.BooleanField(default=True)
    timeout_s = models.FloatField(default=30)
    scrape_lag_s = models.PositiveIntegerField(default=120, help_text="pull minutes older than now - lag")
    backfill_minutes = models.PositiveIntegerField(default=1440, help_text="history pulled for a new SLO")
    enabled = models.BooleanField(default=True)

    # Every served SLO is pulled up to (excluding) this instant.
    watermark = models.DateTimeField(null=True, blank=True)
    pulling_since = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    samples_ingested = models.BigIntegerField(default=0, help_text="present SLO minutes stored")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def source_key(self) -> str:
        """The stable `source` string of the rows this source writes."""
        return f"prometheus:{self.pk}"


class SliMinute(models.Model):
    """Good and valid events of one SLO from one source in one minute.

    Upserts by (slo, minute, source) make ingest idempotent: re-sending a minute replaces it.
    `present=False` records a minute the source was asked for and had no usable data (a scrape gap):
    missing, never zero. Values are stored as reported (good may exceed valid after a counter reset);
    readers cap good at valid per minute.

    Partitioned by day on PostgreSQL (`slo.telemetry.partitions`), as are `SeriesMinute` and
    `PushedMinute`.
    """

    pk = models.CompositePrimaryKey("slo_id", "minute", "source")
    # No index of its own: the primary key starts with slo (one index less on the hottest insert).
    slo = models.ForeignKey(
        Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    source = models.CharField(max_length=100)
    good = models.BigIntegerField()
    valid = models.BigIntegerField()
    present = models.BooleanField(default=True)

    class Meta:
        # The primary key (slo, minute, source) reads a time range of one SLO; this one reads
        # "every SLO over the last hours" and drives retention.
        indexes = [models.Index(fields=["minute"], name="sli_minute_by_time")]

    def __str__(self) -> str:
        return f"SLO {self.slo_id} minute {self.minute} from {self.source}"


class SliFeed(models.Model):
    """Which source is expected to report which SLO, and since when: the basis of "missing".

    A minute of an SLO is present only if every feed expected at that minute reported it. A feed
    is expected from `first_minute` to:
    - `pull`: forever (its source is enabled: minutes past the watermark are missing until pulled);
    - `push`: `last_minute` + the push silence grace (a gateway that stops pushing leaves missing
      minutes, until it is presumed gone);
    - `retired`: `last_minute` (source disabled or deleted, gateway removed).
    """

    MODES = [("pull", "pull"), ("push", "push"), ("retired", "retired")]

    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    source = models.CharField(max_length=100)
    mode = models.CharField(max_length=8, choices=MODES)
    first_minute = models.BigIntegerField()
    last_minute = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["slo", "source"], name="sli_feed_once")]
        indexes = [models.Index(fields=["source"], name="sli_feed_by_source")]

    def __str__(self) -> str:
        return f"{self.source} -> SLO {self.slo_id} ({self.mode})"


class SliHour(models.Model):
    """Hourly rollup of `SliMinute` over all sources, recomputed after every ingest that touches
    the hour (see `SliHourPending`). Sums cover present minutes only (good capped at valid per minute); `present_minutes`
    (0..60) says how much of the hour had telemetry."""

    pk = models.CompositePrimaryKey("slo_id", "hour")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    hour = models.BigIntegerField(help_text="hours since the epoch, UTC")
    good = models.BigIntegerField()
    valid = models.BigIntegerField()
    present_minutes = models.PositiveSmallIntegerField()

    class Meta:
        indexes = [models.Index(fields=["hour"], name="sli_hour_by_time")]

    def __str__(self) -> str:
        return f"SLO {self.slo_id} hour {self.hour}"


class SliHourPending(models.Model):
    """An hour whose rollup must be recomputed: written by every ingest in its transaction, consumed
    by the rollup task (claimed with SKIP LOCKED, deleted in the transaction that writes the
    rollup). The rows are the work queue: a lost task message only delays the rollup until the
    periodic sweep."""

    pk = models.CompositePrimaryKey("slo_id", "hour")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    hour = models.BigIntegerField(help_text="hours since the epoch, UTC")
    marked_at = models.FloatField(help_text="epoch seconds of the latest ingest that touched the hour")

    def __str__(self) -> str:
        return f"rollup of SLO {self.slo_id} hour {self.hour} pending"


class SliSpan(models.Model):
    """Minutes `[first_minute, last_minute]` of one SLO that an ingest (push, pull, import) wrote, or
    whose coverage changed, and that the budget feed has not synced yet.

    Written in the same transaction as the minutes it describes, so a committed minute always has
    its span; consumed by `slo.budget.feed.budget_sync_pending`, which claims spans with SKIP
    LOCKED and deletes them in the transaction that writes the budget buckets (a crash leaves them
    for the next run). Rows are only inserted, never updated: an ingest never waits for the sync.
    """

    id = models.BigAutoField(primary_key=True)
    # No index on slo: the table is a short queue read in id order; inserts stay cheap.
    slo = models.ForeignKey(
        Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    first_minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    last_minute = models.BigIntegerField(help_text="minutes since the epoch, UTC (inclusive)")
    marked_at = models.FloatField(help_text="epoch seconds of the write")

    def __str__(self) -> str:
        return f"SLO {self.slo_id} minutes {self.first_minute}..{self.last_minute} to sync"


class SeriesMinute(models.Model):
    """One pushed contract series' value in one minute: a counter increase (requests, fallbacks,
    cache lookups, compute seconds, egress bytes, histogram `_bucket`/`_count`/`_sum`) or a gauge.

    `labels` is the canonical `k=v,k=v` of the labels other than service and tier, sorted, with
    `le` normalised (`0.15`, `2.0`, `+Inf`), so spellings of one bucket are one series. The gateway
    is the `source` (`gateway:<id>`). A re-sent minute replaces everything the source said about it.
    """

    pk = models.CompositePrimaryKey("minute", "source", "name", "service", "tier", "labels")
    minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    source = models.CharField(max_length=100)
    name = models.CharField(max_length=100)
    service = models.CharField(max_length=63, blank=True)
    tier = models.CharField(max_length=20, blank=True)
    labels = models.CharField(max_length=500, blank=True)
    value = models.FloatField()

    class Meta:
        # cost and gateway-health reads: one service over a time range
        indexes = [models.Index(fields=["service", "minute"], name="series_minute_by_service")]

    def __str__(self) -> str:
        return f"{self.name}{{{self.labels}}} minute {self.minute} from {self.source}"


class PushedMinute(models.Model):
    """The stamp of the write that holds one pushed minute of one source: the newest write wins.

    A gateway's batch carries `sent_at` (else the time the control plane received it). A minute is
    stored only if its stamp is not older than the stored one (`INSERT ... ON CONFLICT DO UPDATE
    ... WHERE stored.stamp <= new.stamp`, in the ingest's transaction), so replaying an old captured
    batch never undoes a later correction. The minute is the unit, not the series: a listed minute
    is complete, and a series dropped by a correction must not come back from an older batch.
    """

    pk = models.CompositePrimaryKey("source", "minute")
    source = models.CharField(max_length=100)
    minute = models.BigIntegerField(help_text="minutes since the epoch, UTC")
    stamp = models.BigIntegerField(help_text="sent_at of the write, microseconds since the epoch")

    class Meta:
        # retention deletes by time
        indexes = [models.Index(fields=["minute"], name="pushed_minute_by_time")]

    def __str__(self) -> str:
        return f"{self.source} minute {self.minute} stamped {self.stamp}"
