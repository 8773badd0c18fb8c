"""The budget engine's tables: its own buckets in budget units, status, alerts, notifications,
error-budget policies and cost.

Bucket tables hold *budget units* (events for occurrences budgeting, minutes for timeslices), so
the evaluation is a few range sums whatever the SLO's budgeting method:

- `BudgetMinute` (recent minutes, exact short windows), `BudgetHour` and `BudgetDay` (rollups for
  long windows) are maintained together by `slo.budget.services.budget_minutes_record`.
- A minute without a row is missing (no telemetry): neither good nor bad.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from slo.models.catalog import Service, Slo


class BudgetMinute(models.Model):
    """One SLO minute in budget units. `events` is the raw valid-event count (traffic)."""

    pk = models.CompositePrimaryKey("slo_id", "minute")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    minute = models.DateTimeField()
    good = models.FloatField()
    valid = models.FloatField()
    events = models.FloatField()

    class Meta:
        # The evaluation scans "every SLO, the last 6 hours": an index led by the minute.
        indexes = [models.Index(fields=["minute", "slo"], name="budget_minute_by_time")]

    def __str__(self) -> str:
        return f"SLO {self.slo_id} minute {self.minute}"


class BudgetHour(models.Model):
    """Hourly rollup of `BudgetMinute`; `present_minutes` (0..60) counts minutes with telemetry."""

    pk = models.CompositePrimaryKey("slo_id", "hour")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    hour = models.DateTimeField()
    good = models.FloatField()
    valid = models.FloatField()
    events = models.FloatField()
    present_minutes = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["hour", "slo"], name="budget_hour_by_time")]

    def __str__(self) -> str:
        return f"SLO {self.slo_id} hour {self.hour}"


class BudgetDay(models.Model):
    """Daily (UTC) rollup of `BudgetHour`; `present_minutes` is 0..1440."""

    pk = models.CompositePrimaryKey("slo_id", "day")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    day = models.DateTimeField()
    good = models.FloatField()
    valid = models.FloatField()
    events = models.FloatField()
    present_minutes = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["day", "slo"], name="budget_day_by_time")]

    def __str__(self) -> str:
        return f"SLO {self.slo_id} day {self.day}"


class SloStatus(models.Model):
    """The latest evaluation of one SLO. `evaluated_at` is also the claim watermark: an evaluation
    for instant T only touches rows whose `evaluated_at` is older than T."""

    slo = models.OneToOneField(Slo, on_delete=models.CASCADE, primary_key=True, related_name="status")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    slo_version = models.PositiveIntegerField(default=0)
    sli = models.FloatField(null=True)
    data_quality = models.CharField(max_length=24, default="no_data")
    error_budget_total = models.FloatField(null=True)
    error_budget_consumed = models.FloatField(null=True)
    error_budget_remaining = models.FloatField(null=True, help_text="ratio; negative once overspent")
    # Per window column (the burn windows of `window_key`, in minutes, then the period), packed as
    # float64 (minutes, good, valid, events, missing minutes, data-quality code, burn rate or NaN):
    # compact typed values written without building JSON. `windows`, `burn_rates` and `tiers`
    # expand them for readers.
    window_key = models.CharField(max_length=200, blank=True, default="")
    window_data = models.BinaryField(default=b"")
    tier_codes = models.BinaryField(default=b"", help_text="int8 status code per alert tier")
    # Hash of what a reader would see change (states, codes, rounded figures): the evaluation
    # rewrites a row's figures only when it changes or its refresh minute comes (`evaluation`).
    fingerprint = models.BigIntegerField(null=True, blank=True)
    alert_state = models.CharField(max_length=10, default="unknown")
    time_to_exhaustion_s = models.FloatField(null=True)
    time_to_exhaustion_basis = models.CharField(max_length=16, default="no_data")
    period_start = models.DateTimeField(null=True)
    period_end = models.DateTimeField(null=True)
    # Why the SLO has no data (or no traffic), when it has none: {code, message, since}; see
    # `slo.budget.nodata`. Null while the SLO has data.
    no_data_reason = models.JSONField(null=True, blank=True)

    def __str__(self) -> str:
        return f"status of SLO {self.slo_id} at {self.evaluated_at}"

    @property
    def windows(self) -> dict[str, dict[str, Any]]:
        """window -> {minutes, good, valid, events, missing_minutes, data_quality}."""
        return status_windows(self.window_key, self.window_data)

    @property
    def burn_rates(self) -> dict[str, float | None]:
        """burn window -> burn rate (None without data)."""
        return status_burn_rates(self.window_key, self.window_data)

    @property
    def tiers(self) -> list[int]:
        """Tier status codes in `alert_tiers_for(spec)` order."""
        return [int(code) for code in bytes(self.tier_codes or b"")]


WINDOW_FIELDS = 7  # minutes, good, valid, events, missing, data-quality code, burn rate


def _window_table(key: str, data: bytes | memoryview | None) -> tuple[list[str], list[list[float]]]:
    import numpy as np

    from slo.engine.windows import window_name

    raw = bytes(data or b"")
    if not raw:
        return [], []
    names = [window_name(int(m)) for m in key.split(",") if m] + ["period"]
    return names, np.frombuffer(raw, dtype=np.float64).reshape(len(names), WINDOW_FIELDS).tolist()


def status_windows(key: str, data: bytes | memoryview | None) -> dict[str, dict[str, Any]]:
    from slo.engine import DATA_QUALITY

    names, rows = _window_table(key, data)
    return {
        name: {
            "minutes": int(row[0]),
            "good": row[1],
            "valid": row[2],
            "events": row[3],
            "missing_minutes": int(row[4]),
            "data_quality": DATA_QUALITY[int(row[5])],
        }
        for name, row in zip(names, rows, strict=True)
    }


def status_burn_rates(key: str, data: bytes | memoryview | None) -> dict[str, float | None]:
    names, rows = _window_table(key, data)
    return {name: (row[6] if row[6] == row[6] else None) for name, row in zip(names[:-1], rows, strict=False)}


class SloStatusPoint(models.Model):
    """Compact status history for charts: one point per SLO every 5 minutes of evaluation."""

    pk = models.CompositePrimaryKey("slo_id", "at")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    at = models.DateTimeField()
    sli = models.FloatField(null=True)
    burn_rate_1h = models.FloatField(null=True)
    error_budget_remaining = models.FloatField(null=True)
    alert_state = models.CharField(max_length=10)
    data_quality = models.CharField(max_length=24)

    def __str__(self) -> str:
        return f"SLO {self.slo_id} at {self.at}"


ALERT_KINDS = (
    "burn_rate",
    "cache_hit_drop",
    "stale_hits",
    "model_skew",
    "composite_burn",
    "capacity",
    "device_health",
)
SEVERITIES = ("page", "ticket")


class AlertState(models.Model):
    """Whether one alert is firing now. The row is the claim: a transition is the conditional update
    `filter(key=..., firing=False).update(firing=True)` that changed exactly one row.

    `key` is `slo:<id>:<severity>` for burn-rate alerts, `composite:<id>:<severity>` for composite
    SLOs' burn-rate alerts, `svc:<service>:<kind>:<subject>` for cache alerts.
    """

    key = models.CharField(max_length=200, unique=True)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=20, choices=[(k, k) for k in ALERT_KINDS])
    severity = models.CharField(max_length=10, choices=[(s, s) for s in SEVERITIES])
    firing = models.BooleanField(default=False)
    since = models.DateTimeField(null=True, blank=True)
    last_event = models.ForeignKey(
        "AlertEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"{self.key} {'firing' if self.firing else 'ok'}"


class AlertEvent(models.Model):
    """One alert transition (firing or resolved) with its evidence. The history of alerts."""

    STATES = (("firing", "firing"), ("resolved", "resolved"))

    state_key = models.CharField(max_length=200)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    slo = models.ForeignKey(Slo, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    kind = models.CharField(max_length=20, choices=[(k, k) for k in ALERT_KINDS])
    severity = models.CharField(max_length=10, choices=[(s, s) for s in SEVERITIES])
    state = models.CharField(max_length=10, choices=STATES)
    windows = models.JSONField(default=list, help_text="the windows that decided, e.g. ['1h', '5m']")
    evidence = models.JSONField(default=dict, help_text="burn rates, thresholds, data quality")
    at = models.DateTimeField(help_text="the evaluation instant that saw the transition")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            # Belt and braces for idempotency: the same transition at the same instant is stored once.
            models.UniqueConstraint(fields=["state_key", "state", "at"], name="alert_event_once"),
        ]
        indexes = [models.Index(fields=["service", "-at"], name="alert_event_by_service")]

    def __str__(self) -> str:
        return f"{self.state_key} {self.state} at {self.at}"


CHANNEL_KINDS = ("generic_webhook", "slack", "email", "alertmanager")


class NotificationChannel(models.Model):
    """Where alert transitions are sent. The webhook signing secret is stored encrypted and never
    returned by the API."""

    name = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(max_length=20, choices=[(k, k) for k in CHANNEL_KINDS])
    url = models.URLField(max_length=500, blank=True)
    email_to = models.JSONField(default=list, blank=True)
    secret_encrypted = models.TextField(blank=True)
    services = models.JSONField(default=list, blank=True, help_text="service names; empty = every service")
    severities = models.JSONField(default=list, blank=True, help_text="page/ticket; empty = both")
    renotify_interval_s = models.PositiveIntegerField(default=0, help_text="0 = never remind")
    enabled = models.BooleanField(default=True)
    reposted_at = models.DateTimeField(
        null=True, blank=True, help_text="alertmanager: when the last re-post pass claimed this channel"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Notification(models.Model):
    """Outbox row: one message for one channel. Sent by a task, never by the request or the
    evaluation transaction; claimed with `filter(pk=..., state="pending").update(state="sending")`."""

    STATES = [(s, s) for s in ("pending", "sending", "sent", "failed")]
    REASONS = [(s, s) for s in ("firing", "resolved", "reminder")]

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="notifications")
    alert_event = models.ForeignKey(AlertEvent, on_delete=models.CASCADE, related_name="notifications")
    reason = models.CharField(max_length=10, choices=REASONS)
    state = models.CharField(max_length=10, choices=STATES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"notification {self.pk} {self.reason} via {self.channel_id}: {self.state}"


class BudgetPolicy(models.Model):
    """Error-budget policy of one service (or the default, `service=None`): what a low or spent
    budget means for releases."""

    service = models.OneToOneField(
        Service, on_delete=models.CASCADE, null=True, blank=True, related_name="budget_policy"
    )
    low_remaining_ratio = models.FloatField(default=0.25, help_text="below this: extra approvals")
    low_extra_approvals = models.PositiveIntegerField(default=1)
    exhausted_remaining_ratio = models.FloatField(default=0.0, help_text="at or below this: freeze")
    freeze_allowed_change_kinds = models.JSONField(default=list, help_text="e.g. ['rollback', 'hotfix']")
    unknown_blocks = models.BooleanField(default=False, help_text="treat no data as a freeze")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service"], condition=models.Q(service__isnull=True), name="one_default_budget_policy"
            ),
        ]

    def __str__(self) -> str:
        return f"budget policy of {self.service.name if self.service_id else 'default'}"


class CostModel(models.Model):
    """An immutable version of the price list; `prices` is validated by `slo.budget.cost`."""

    version = models.PositiveIntegerField(unique=True)
    effective_from = models.DateTimeField()
    prices = models.JSONField()
    note = models.TextField(blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"cost model v{self.version}"


class CostRollup(models.Model):
    """Cost figures of one service and route (or `all`) for one hour or day, from one cost model."""

    RESOLUTIONS = [("hour", "hour"), ("day", "day")]

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+")
    route = models.CharField(
        max_length=20, help_text="local, cache, private_cloud, public_cloud, failed, all"
    )
    resolution = models.CharField(max_length=4, choices=RESOLUTIONS)
    bucket_start = models.DateTimeField()
    cost_model_version = models.PositiveIntegerField()
    requests = models.FloatField()
    cost_usd = models.FloatField()
    cost_per_request_usd = models.FloatField(null=True)
    figures = models.JSONField(default=dict, help_text="every figure of slo.budget.cost.CostFigures")
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-bucket_start", "service_id", "route"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "route", "resolution", "bucket_start"], name="cost_rollup_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.service_id}/{self.route} {self.resolution} {self.bucket_start}"


class WindowState(models.Model):
    """Running window totals of one SLO as of `as_of` (see `slo.budget.window_state`): per window
    column its start and (good, valid, events, present minutes), packed as float64/int64 bytes so a
    minute's 10,000 rows are written without building JSON."""

    slo = models.OneToOneField(
        Slo, on_delete=models.CASCADE, primary_key=True, related_name="+", db_constraint=False
    )
    as_of = models.BigIntegerField(help_text="epoch minute the windows end at (exclusive)")
    key = models.CharField(max_length=200, help_text="the burn window columns, in minutes")
    starts = models.BinaryField(help_text="int64 start minute per column")
    sums = models.BinaryField(help_text="float64 (good, valid, events, present) per column")

    def __str__(self) -> str:
        return f"window state of SLO {self.slo_id} as of minute {self.as_of}"


class EvaluationChunk(models.Model):
    """One chunk of an evaluation instant: the active SLOs with ids in `[first_slo, last_slo]`.
    Workers claim chunks with `SELECT ... FOR UPDATE SKIP LOCKED` and evaluate each in the claiming
    transaction, which also sets `done_at`: no chunk is evaluated twice, and a crash leaves it for
    another worker (see `slo.budget.chunks`)."""

    at = models.DateTimeField()
    first_slo = models.BigIntegerField()
    last_slo = models.BigIntegerField()
    done_at = models.DateTimeField(null=True, blank=True)
    evaluated = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["at", "first_slo"], name="evaluation_chunk_once")]

    def __str__(self) -> str:
        return f"SLOs {self.first_slo}..{self.last_slo} at {self.at}"
