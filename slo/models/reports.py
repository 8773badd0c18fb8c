"""Scheduled error-budget reports: schedules, immutable report snapshots and their email outbox.

A `Report` is a snapshot: the numbers of one scope (a service, or every service of a team) over one
calendar period, computed once and never changed (append-only like the audit log: the queryset
refuses update and delete, `save()` refuses to overwrite). A `ReportDelivery` is the outbox row that
emails it; it is the mutable part, claimed with a conditional update by the sending task.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

SCOPE_KINDS = ("service", "team")
PERIOD_UNITS = ("week", "month")
TRIGGERS = ("schedule", "api", "command", "demo")


class ReportIsImmutable(Exception):
    """A report snapshot was about to be changed or deleted."""


class ReportSchedule(models.Model):
    """When and for whom a report is generated. The cron itself is a django-celery-beat
    `PeriodicTask` (editable in the admin); `last_period_start` is the claim: the run for a period
    sets it with a conditional update, so two runs (or a redelivered task) generate it once."""

    name = models.SlugField(max_length=63, unique=True)
    scope_kind = models.CharField(max_length=10, choices=[(k, k) for k in SCOPE_KINDS])
    scope_value = models.CharField(max_length=200, help_text="a service name, or a team (service owner)")
    period = models.CharField(max_length=5, choices=[(p, p) for p in PERIOD_UNITS])
    time_zone = models.CharField(max_length=64, default="UTC")
    recipients = models.JSONField(default=list, blank=True, help_text="email addresses")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_period_start = models.DateTimeField(null=True, blank=True, help_text="newest period generated")
    created_by_name = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scope_kind} {self.scope_value}, {self.period})"


class ReportQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise ReportIsImmutable("reports cannot be updated")

    def delete(self) -> NoReturn:
        raise ReportIsImmutable("reports cannot be deleted")


class Report(models.Model):
    """One generated report: an immutable snapshot of its numbers (`numbers`, see
    docs/reports.md for the schema of each `schema_version`)."""

    scope_kind = models.CharField(max_length=10, choices=[(k, k) for k in SCOPE_KINDS])
    scope_value = models.CharField(max_length=200)
    period = models.CharField(max_length=5, choices=[(p, p) for p in PERIOD_UNITS])
    period_label = models.CharField(max_length=16, help_text="2026-W47 or 2026-11")
    time_zone = models.CharField(max_length=64)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    generated_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=10, choices=[(t, t) for t in TRIGGERS])
    requested_by_name = models.CharField(max_length=150, blank=True)
    # The schedule that produced it, as a plain id: deleting a schedule must not touch its reports.
    schedule_ref = models.BigIntegerField(null=True, blank=True)
    schema_version = models.PositiveSmallIntegerField()
    numbers = models.JSONField()
    numbers_sha256 = models.CharField(max_length=64, help_text="of the canonical JSON of `numbers`")

    objects = ReportQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "-generated_at", "-id"]
        indexes = [
            models.Index(fields=["scope_kind", "scope_value", "-period_start"], name="report_by_scope")
        ]
        constraints = [
            # Belt and braces for the schedule claim: a schedule reports each period once.
            models.UniqueConstraint(
                fields=["schedule_ref", "period_start"],
                condition=models.Q(schedule_ref__isnull=False),
                name="report_once_per_schedule_period",
            ),
        ]

    def __str__(self) -> str:
        return f"report {self.pk}: {self.scope_kind} {self.scope_value} {self.period_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ReportIsImmutable("reports cannot be changed; generate a new one")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise ReportIsImmutable("reports cannot be deleted")


class ReportDelivery(models.Model):
    """Outbox row: email one report to its recipients. Written in the report's transaction, sent by
    a task, claimed with `filter(pk=..., state="pending").update(state="sending")`."""

    STATES = [(s, s) for s in ("pending", "sending", "sent", "failed")]

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="deliveries")
    recipients = models.JSONField()
    state = models.CharField(max_length=10, choices=STATES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="report_delivery_due")]

    def __str__(self) -> str:
        return f"delivery {self.pk} of report {self.report_id}: {self.state}"
