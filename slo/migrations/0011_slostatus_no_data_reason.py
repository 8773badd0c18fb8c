from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0010_context_samples"),
    ]

    operations = [
        migrations.AddField(
            model_name="slostatus",
            name="no_data_reason",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
