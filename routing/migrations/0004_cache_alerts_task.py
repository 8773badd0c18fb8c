"""The cache alerts moved from slo's task (fixed thresholds) to routing's (each service's cache
config thresholds). Retarget the existing periodic task instead of leaving both running."""

from django.db import migrations

OLD_TASK = "slo.budget.cache_alerts"
NEW_TASK = "routing.tasks.delivery.cache_alerts"


def retarget(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=OLD_TASK).update(task=NEW_TASK)


def restore(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task=NEW_TASK).update(task=OLD_TASK)


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0003_releases"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(retarget, restore)]
