"""Writes of the reports: generating snapshots, schedules (with their beat entries) and emailing.

A report is generated in one transaction with its audit event and, when it has recipients, its
outbox row (`ReportDelivery`); the email task is enqueued on commit, so a rolled-back report never
sends mail, and a broker that is down only delays the mail until the periodic sweep. A scheduled run claims its period with a conditional update of the schedule row, so a
run delivered twice (acks_late, a second beat) generates and sends the period once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date, datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from controlplane.audit import audit_record
from controlplane.errors import NotFound, ValidationFailed
from slo.models.reports import PERIOD_UNITS, SCOPE_KINDS, Report, ReportDelivery, ReportSchedule
from slo.reports import compute, selectors

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
MAX_SEND_ATTEMPTS = 5
# A delivery claimed longer ago than this was abandoned by a dead worker: it may be retried.
SENDING_LEASE = timedelta(minutes=10)
RUN_TASK = "slo.reports.run_schedule"
# Default cron of a schedule: early on the first morning after the period, in its time zone,
# late enough for the last minutes of telemetry to have been synced into the budget buckets.
DEFAULT_CRON = {
    "week": {"minute": "0", "hour": "6", "day_of_week": "1", "day_of_month": "*"},
    "month": {"minute": "0", "hour": "6", "day_of_week": "*", "day_of_month": "1"},
}


def _actor_name(actor: Any) -> str:
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor.get_username()
    return str(actor) if actor else "system"


def canonical_json(numbers: dict[str, Any]) -> str:
    """The numbers as canonical JSON (sorted keys); refuses NaN so undefined figures stay None."""
    return json.dumps(numbers, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _recipient_problems(recipients: Any, path: str = "recipients") -> list[dict[str, str]]:
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        return [{"path": path, "message": "a list of email addresses"}]
    if len(recipients) > MAX_RECIPIENTS:
        return [{"path": path, "message": f"at most {MAX_RECIPIENTS} recipients"}]
    problems = []
    for index, address in enumerate(recipients):
        try:
            validate_email(address)
        except Exception:  # noqa: BLE001 - any refusal is a problem to report
            problems.append({"path": f"{path}[{index}]", "message": "not an email address"})
    return problems


def _scope(data: dict[str, Any]) -> tuple[str, str, list[dict[str, str]]]:
    """(kind, value, problems) from `{"service": name}` or `{"team": owner}` (exactly one)."""
    given = [k for k in SCOPE_KINDS if data.get(k) not in (None, "")]
    if len(given) != 1:
        return "", "", [{"path": "service", "message": "give exactly one of service or team"}]
    kind = given[0]
    value = data[kind]
    if not isinstance(value, str) or len(value) > 200:
        return "", "", [{"path": kind, "message": "a name of at most 200 characters"}]
    if not selectors.scope_services(scope_kind=kind, scope_value=value):
        message = f"no service named {value!r}" if kind == "service" else f"no service is owned by {value!r}"
        return kind, value, [{"path": kind, "message": message}]
    return kind, value, []


def _start(value: Any) -> tuple[date | None, list[dict[str, str]]]:
    if value in (None, "", "previous"):
        return None, []
    if isinstance(value, str):
        try:
            return date.fromisoformat(value), []
        except ValueError:
            pass
    return None, [{"path": "start", "message": '"previous" or a date YYYY-MM-DD'}]


# ----------------------------------------------------------------------------- generating


def _create(
    *,
    actor: Any,
    scope_kind: str,
    scope_value: str,
    period: compute.ReportPeriod,
    now: datetime,
    trigger: str,
    recipients: list[str],
    schedule: ReportSchedule | None = None,
) -> Report:
    """Compute and store one snapshot, with its audit event and outbox row (caller's transaction)."""
    numbers = selectors.report_numbers(scope_kind=scope_kind, scope_value=scope_value, period=period)
    text = canonical_json(numbers)
    report = Report.objects.create(
        scope_kind=scope_kind,
        scope_value=scope_value,
        period=period.unit,
        period_label=period.label,
        time_zone=period.time_zone,
        period_start=period.start,
        period_end=period.end,
        generated_at=now,
        trigger=trigger,
        requested_by_name=_actor_name(actor),
        schedule_ref=schedule.pk if schedule else None,
        schema_version=compute.SCHEMA_VERSION,
        numbers=json.loads(text),
        numbers_sha256=hashlib.sha256(text.encode()).hexdigest(),
    )
    audit_record(
        actor=actor,
        action="generate",
        obj=report,
        after={
            "scope": f"{scope_kind}:{scope_value}",
            "period": period.label,
            "time_zone": period.time_zone,
            "trigger": trigger,
            "numbers_sha256": report.numbers_sha256,
            "recipients": len(recipients),
        },
    )
    if recipients:
        delivery = ReportDelivery.objects.create(
            report=report, recipients=list(recipients), next_attempt_at=now
        )
        transaction.on_commit(lambda: _enqueue_send(delivery.pk))
    return report


def _enqueue_send(delivery_id: int) -> None:
    """After commit: ask a worker to send now. The delivery row is the outbox: with the broker down
    the periodic `slo.reports.send_due` sends it, so the request that generated the report still
    succeeds (a 500 here, after the commit, would make the client retry and generate it twice)."""
    from kombu.exceptions import OperationalError as BrokerError

    from slo.tasks.reports import report_delivery_send

    try:
        # no publish retries: the sweep is the retry, and the request should not wait for it
        report_delivery_send.apply_async((delivery_id,), retry=False)
    except (BrokerError, OSError) as exc:
        logger.warning(
            "could not enqueue report delivery %s (%s); the periodic sweep will send it",
            delivery_id,
            type(exc).__name__,
        )


def report_generate(
    *, actor: Any, data: dict[str, Any], now: datetime | None = None, trigger: str = "api"
) -> Report:
    """Generate a report on demand. `data`: `service` or `team`, `period` (week|month), `start`
    ("previous", the default, or the local date the period starts on), `time_zone` (default the
    server's TIME_ZONE) and optional `recipients` to email it to."""
    from django.conf import settings

    now = now or timezone.now()
    unknown = sorted(set(data) - {"service", "team", "period", "start", "time_zone", "recipients"})
    problems = [{"path": k, "message": "unknown field"} for k in unknown]
    kind, value, scope_problems = _scope(data)
    problems += scope_problems
    start, start_problems = _start(data.get("start"))
    problems += start_problems
    recipients = data.get("recipients") or []
    problems += _recipient_problems(recipients)
    if problems:
        raise ValidationFailed("invalid report request", problems=problems)
    period, period_problems = compute.report_period(
        str(data.get("period") or ""), str(data.get("time_zone") or settings.TIME_ZONE), start=start, now=now
    )
    if period is None:
        raise ValidationFailed("invalid report request", problems=period_problems)
    with transaction.atomic():
        return _create(
            actor=actor,
            scope_kind=kind,
            scope_value=value,
            period=period,
            now=now,
            trigger=trigger,
            recipients=recipients,
        )


def report_schedule_run(*, schedule_id: int, now: datetime) -> Report | None:
    """Generate and send the schedule's last complete period, once. Returns None when there is
    nothing to do (disabled, deleted, or this period was already generated by another run)."""
    schedule = ReportSchedule.objects.filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        return None
    period, problems = compute.report_period(schedule.period, schedule.time_zone, start=None, now=now)
    if period is None:
        logger.error("report schedule %s cannot run: %s", schedule.pk, problems)
        return None
    try:
        with transaction.atomic():
            claimed = (
                ReportSchedule.objects.filter(pk=schedule.pk, enabled=True)
                .filter(Q(last_period_start__isnull=True) | Q(last_period_start__lt=period.start))
                .update(last_period_start=period.start)
            )
            if claimed != 1:
                return None  # another run got there first (or the period is older than the last one)
            return _create(
                actor=f"schedule:{schedule.name}",
                scope_kind=schedule.scope_kind,
                scope_value=schedule.scope_value,
                period=period,
                now=now,
                trigger="schedule",
                recipients=list(schedule.recipients),
                schedule=schedule,
            )
    except IntegrityError:
        # The unique (schedule, period) constraint: a run that read a stale watermark lost the race.
        logger.info("report schedule %s: period %s already generated", schedule.pk, period.label)
        return None


# ----------------------------------------------------------------------------- sending


def report_delivery_send(*, delivery_id: int, now: datetime) -> str:
    """Email one delivery. Claimed first, so a task run twice sends once. Returns the new state
    (`sent`, `pending` for a retry, `failed`) or `skipped` when another worker has it."""
    from slo.reports.render import report_email

    claimed = ReportDelivery.objects.filter(pk=delivery_id, state="pending", next_attempt_at__lte=now).update(
        state="sending", claimed_at=now, attempts=F("attempts") + 1
    )
    if claimed != 1:
        return "skipped"
    delivery = ReportDelivery.objects.select_related("report").get(pk=delivery_id)
    try:
        report_email(delivery.report, recipients=list(delivery.recipients)).send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - SMTP and backends raise many kinds; each is retried
        state = "failed" if delivery.attempts >= MAX_SEND_ATTEMPTS else "pending"
        backoff = timedelta(minutes=2**delivery.attempts)
        ReportDelivery.objects.filter(pk=delivery_id, state="sending").update(
            state=state, next_attempt_at=now + backoff, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
        logger.warning(
            "report %s email (delivery %s, attempt %s) failed: %s",
            delivery.report_id,
            delivery_id,
            delivery.attempts,
            type(exc).__name__,
        )
        return state
    ReportDelivery.objects.filter(pk=delivery_id, state="sending").update(
        state="sent", sent_at=now, last_error=""
    )
    return "sent"


def report_deliveries_send_due(*, now: datetime) -> dict[str, int]:
    """Send what is due (retries, lost enqueues) and free deliveries abandoned mid-send."""
    reclaimed = ReportDelivery.objects.filter(state="sending", claimed_at__lt=now - SENDING_LEASE).update(
        state="pending"
    )
    counts: dict[str, int] = {"reclaimed": reclaimed}
    due = ReportDelivery.objects.filter(state="pending", next_attempt_at__lte=now).order_by(
        "next_attempt_at", "id"
    )
    for delivery_id in list(due.values_list("pk", flat=True)[:100]):
        state = report_delivery_send(delivery_id=delivery_id, now=now)
        counts[state] = counts.get(state, 0) + 1
    return counts


# ----------------------------------------------------------------------------- schedules

SCHEDULE_FIELDS = ("name", "service", "team", "period", "time_zone", "recipients", "enabled", "cron")


def schedule_doc(schedule: ReportSchedule) -> dict[str, Any]:
    task = schedule.periodic_task
    cron = None
    if task is not None and task.crontab is not None:
        cron = {
            "minute": task.crontab.minute,
            "hour": task.crontab.hour,
            "day_of_week": task.crontab.day_of_week,
            "day_of_month": task.crontab.day_of_month,
        }
    return {
        "name": schedule.name,
        schedule.scope_kind: schedule.scope_value,
        "period": schedule.period,
        "time_zone": schedule.time_zone,
        "recipients": list(schedule.recipients),
        "enabled": schedule.enabled,
        "cron": cron,
    }


def _cron_problems(cron: Any) -> list[dict[str, str]]:
    if cron is None:
        return []
    if not isinstance(cron, dict) or set(cron) - {"minute", "hour", "day_of_week", "day_of_month"}:
        return [{"path": "cron", "message": "an object with minute, hour, day_of_week, day_of_month"}]
    from celery.schedules import ParseException, crontab

    try:
        crontab(**{k: str(v) for k, v in cron.items()})
    except (ParseException, ValueError, TypeError) as exc:
        return [{"path": "cron", "message": f"not a valid crontab: {exc}"}]
    return []


def report_schedule_save(
    *, actor: Any, data: dict[str, Any], schedule: ReportSchedule | None = None, now: datetime | None = None
) -> ReportSchedule:
    """Create or update a schedule and its django-celery-beat entry (a crontab in the schedule's
    time zone; the default is 06:00 on the first day after the period). Unknown fields are refused."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    now = now or timezone.now()
    unknown = sorted(set(data) - set(SCHEDULE_FIELDS))
    problems = [{"path": k, "message": "unknown field"} for k in unknown]
    base = (
        schedule_doc(schedule)
        if schedule
        else {"time_zone": "UTC", "recipients": [], "enabled": True, "cron": None}
    )
    if schedule and ("service" in data or "team" in data):
        base.pop(schedule.scope_kind, None)
    doc = {**base, **data}
    name = doc.get("name")
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 63
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        problems.append({"path": "name", "message": "1..63 letters, digits, - or _"})
    kind, value, scope_problems = _scope(doc)
    problems += scope_problems
    if doc.get("period") not in PERIOD_UNITS:
        problems.append({"path": "period", "message": "week or month"})
    if not compute.valid_time_zone(doc.get("time_zone")):
        problems.append({"path": "time_zone", "message": "an IANA time zone, e.g. Europe/Paris"})
    problems += _recipient_problems(doc.get("recipients"))
    if not isinstance(doc.get("enabled"), bool):
        problems.append({"path": "enabled", "message": "true or false"})
    problems += _cron_problems(doc.get("cron"))
    if problems:
        raise ValidationFailed("invalid report schedule", problems=problems)
    cron = {k: str(v) for k, v in (doc.get("cron") or DEFAULT_CRON[doc["period"]]).items()}
    with transaction.atomic():
        before = schedule_doc(schedule) if schedule else None
        target = schedule or ReportSchedule(created_by_name=_actor_name(actor), created_at=now)
        target.name, target.scope_kind, target.scope_value = name, kind, value
        target.period, target.time_zone = doc["period"], doc["time_zone"]
        target.recipients, target.enabled, target.updated_at = list(doc["recipients"]), doc["enabled"], now
        try:
            with transaction.atomic():
                target.save()
        except IntegrityError:
            raise ValidationFailed(
                "invalid report schedule", problems=[{"path": "name", "message": "name taken"}]
            ) from None
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=cron["minute"],
            hour=cron["hour"],
            day_of_week=cron["day_of_week"],
            day_of_month=cron["day_of_month"],
            month_of_year="*",
            timezone=target.time_zone,
        )
        task = target.periodic_task or PeriodicTask(task=RUN_TASK)
        task.name = f"report: {target.name}"[:200]
        task.crontab, task.interval = crontab, None
        task.kwargs = json.dumps({"schedule_id": target.pk})
        task.enabled = target.enabled
        task.description = (
            f"Error-budget report of {kind} {value}, every {target.period} ({target.time_zone})."
        )
        task.save()
        if target.periodic_task_id != task.pk:
            ReportSchedule.objects.filter(pk=target.pk).update(periodic_task=task)
            target.periodic_task = task
        audit_record(
            actor=actor,
            action="update" if schedule else "create",
            obj=target,
            before=before,
            after=schedule_doc(target),
        )
    return target


def report_schedule_delete(*, actor: Any, schedule_id: int) -> None:
    """Delete a schedule and its beat entry. Its reports stay (they are history)."""
    with transaction.atomic():
        schedule = ReportSchedule.objects.select_for_update().filter(pk=schedule_id).first()
        if schedule is None:
            raise NotFound("no such report schedule")
        audit_record(actor=actor, action="delete", obj=schedule, before=schedule_doc(schedule))
        task = schedule.periodic_task
        schedule.delete()
        if task is not None:
            task.delete()
