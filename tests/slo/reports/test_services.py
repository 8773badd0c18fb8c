"""Schedules, the scheduled task and email delivery (locmem backend, controlled clock)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from controlplane.errors import ValidationFailed
from controlplane.models import AuditEvent
from slo.models.reports import Report, ReportDelivery, ReportSchedule
from slo.reports import services
from slo.tasks import reports as tasks

from .conftest import NOW, TZ, WEEK_START

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule(users, service, make_slo, backdate_versions):
    make_slo()
    backdate_versions()
    return services.report_schedule_save(
        actor=users["admin"],
        data={
            "name": "vision-weekly",
            "service": "shelf-vision",
            "period": "week",
            "time_zone": TZ,
            "recipients": ["sre@example.test", "lead@example.test"],
        },
    )


def test_a_schedule_owns_a_beat_crontab_in_its_time_zone(schedule):
    task = schedule.periodic_task
    assert task.task == "slo.reports.run_schedule"
    assert json.loads(task.kwargs) == {"schedule_id": schedule.pk}
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "6", "1")
    assert str(task.crontab.timezone) == TZ
    assert AuditEvent.objects.filter(object_type="slo.reportschedule", action="create").count() == 1


def test_updating_and_disabling_a_schedule_updates_its_beat_entry(schedule, users):
    services.report_schedule_save(
        actor=users["admin"],
        schedule=schedule,
        data={
            "period": "month",
            "enabled": False,
            "cron": {"minute": "30", "hour": "7", "day_of_week": "*", "day_of_month": "2"},
        },
    )
    schedule.refresh_from_db()
    task = schedule.periodic_task
    assert schedule.period == "month" and not task.enabled
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_month) == ("30", "7", "2")


def test_it_refuses_invalid_schedules_with_every_problem(users, service):
    with pytest.raises(ValidationFailed) as caught:
        services.report_schedule_save(
            actor=users["admin"],
            data={
                "name": "bad name!",
                "service": "nope",
                "period": "day",
                "time_zone": "Mars/Olympus",
                "recipients": ["not-an-address"],
                "cron": {"minute": "99", "hour": "*", "day_of_week": "*", "day_of_month": "*"},
                "colour": "red",
            },
        )
    paths = {p["path"] for p in caught.value.problems}
    assert paths == {"name", "service", "period", "time_zone", "recipients[0]", "cron", "colour"}


def test_deleting_a_schedule_keeps_its_reports(
    schedule, users, locmem_email, django_capture_on_commit_callbacks
):
    report = services.report_schedule_run(schedule_id=schedule.pk, now=NOW)
    task_id = schedule.periodic_task_id
    services.report_schedule_delete(actor=users["admin"], schedule_id=schedule.pk)
    from django_celery_beat.models import PeriodicTask

    assert not PeriodicTask.objects.filter(pk=task_id).exists()
    assert Report.objects.filter(pk=report.pk).exists()


def test_the_due_schedule_generates_and_sends_exactly_once_when_run_twice(
    schedule, locmem_email, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = services.report_schedule_run(schedule_id=schedule.pk, now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        second = services.report_schedule_run(schedule_id=schedule.pk, now=NOW + timedelta(minutes=5))
    assert first is not None and second is None
    assert Report.objects.filter(schedule_ref=schedule.pk).count() == 1
    assert first.period_start == WEEK_START and first.trigger == "schedule"
    assert len(locmem_email.outbox) == 1
    message = locmem_email.outbox[0]
    assert sorted(message.to) == ["lead@example.test", "sre@example.test"]
    assert f"https://slo.example.test/reports/{first.pk}/" in message.body
    html = message.alternatives[0][0]
    assert f"https://slo.example.test/reports/{first.pk}/" in html and "<script" not in html
    assert "2026-W47" in message.subject
    # sending the same delivery again (a redelivered task) does nothing
    delivery = ReportDelivery.objects.get(report=first)
    assert delivery.state == "sent"
    assert tasks.report_delivery_send(delivery.pk) == "skipped"
    assert len(locmem_email.outbox) == 1


def test_the_task_runs_the_schedule_through_celery_once(
    schedule, locmem_email, eager_celery, django_capture_on_commit_callbacks, monkeypatch
):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.report_schedule_run.delay(schedule.pk).get()
    with django_capture_on_commit_callbacks(execute=True):
        second = tasks.report_schedule_run.delay(schedule.pk).get()
    assert first is not None and second is None
    assert len(locmem_email.outbox) == 1


def test_the_next_period_is_generated_by_the_next_run(
    schedule, locmem_email, django_capture_on_commit_callbacks
):
    first = services.report_schedule_run(schedule_id=schedule.pk, now=NOW)
    later = services.report_schedule_run(schedule_id=schedule.pk, now=NOW + timedelta(days=7))
    assert later is not None and later.period_start == first.period_start + timedelta(days=7)


def test_a_disabled_schedule_does_not_run(schedule, users):
    services.report_schedule_save(actor=users["admin"], schedule=schedule, data={"enabled": False})
    assert services.report_schedule_run(schedule_id=schedule.pk, now=NOW) is None


def test_a_failed_email_is_retried_then_given_up(schedule, settings, locmem_email):
    report = services.report_schedule_run(schedule_id=schedule.pk, now=NOW)
    delivery = ReportDelivery.objects.get(report=report)
    settings.EMAIL_BACKEND = "tests.slo.reports.failing_backend.FailingBackend"
    assert services.report_delivery_send(delivery_id=delivery.pk, now=NOW) == "pending"
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "ConnectionRefusedError" in delivery.last_error
    # not due yet: the sweep leaves it alone
    assert services.report_deliveries_send_due(now=NOW) == {"reclaimed": 0}
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.report_deliveries_send_due(now=NOW + timedelta(hours=1)) == {"reclaimed": 0, "sent": 1}
    assert len(locmem_email.outbox) == 1


def test_an_on_demand_report_is_audited_and_emailed(
    users, make_slo, backdate_versions, locmem_email, eager_celery, django_capture_on_commit_callbacks
):
    make_slo()
    backdate_versions()
    with django_capture_on_commit_callbacks(execute=True):
        report = services.report_generate(
            actor=users["operator"],
            now=NOW,
            data={
                "service": "shelf-vision",
                "period": "month",
                "time_zone": "UTC",
                "recipients": ["a@example.test"],
            },
        )
    assert report.period_label == "2026-10" and report.requested_by_name == "otto"
    event = AuditEvent.objects.get(object_type="slo.report", object_id=str(report.pk))
    assert event.action == "generate" and event.after["numbers_sha256"] == report.numbers_sha256
    assert [m.to for m in locmem_email.outbox] == [["a@example.test"]]


def test_it_refuses_a_period_that_has_not_ended(users, service):
    with pytest.raises(ValidationFailed) as caught:
        services.report_generate(
            actor=users["operator"],
            now=NOW,
            data={"service": "shelf-vision", "period": "week", "start": "2026-11-23", "time_zone": TZ},
        )
    assert caught.value.problems[0]["path"] == "start"


def test_schedules_list_their_fields(schedule):
    doc = services.schedule_doc(ReportSchedule.objects.get(pk=schedule.pk))
    assert doc["service"] == "shelf-vision" and doc["cron"]["hour"] == "6"
