"""The evaluation task now starts each minute's cycle itself, BUDGET_EVALUATION_GRACE_S after the
minute ends (slo/tasks/budget.py), and beat only has to ask often enough: every 10 s instead of 60.
Existing deployments keep their beat entry (controlplane/schedules.py never edits one), so move it
here, only while it is still at the old default (an admin's own interval is left alone)."""

from django.db import migrations

NAME = "budget: evaluate every SLO"


def _move(apps, old: int, new: int) -> None:
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    task = PeriodicTask.objects.filter(name=NAME, interval__every=old, interval__period="seconds").first()
    if task is None:
        return
    task.interval, _ = IntervalSchedule.objects.get_or_create(every=new, period="seconds")
    task.save(update_fields=["interval"])


def forward(apps, schema_editor):
    _move(apps, 60, 10)


def backward(apps, schema_editor):
    _move(apps, 10, 60)


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0021_budget_fillfactor"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
