import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("slo", "0018_telemetrysource_headers"),
    ]

    operations = [
        migrations.CreateModel(
            name="EvaluationChunk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField()),
                ("first_slo", models.BigIntegerField()),
                ("last_slo", models.BigIntegerField()),
                ("done_at", models.DateTimeField(blank=True, null=True)),
                ("evaluated", models.PositiveIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("at", "first_slo"), name="evaluation_chunk_once")
                ],
            },
        ),
        migrations.CreateModel(
            name="WindowState",
            fields=[
                (
                    "slo",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="slo.slo",
                    ),
                ),
                ("as_of", models.BigIntegerField(help_text="epoch minute the windows end at (exclusive)")),
                ("key", models.CharField(help_text="the burn window columns, in minutes", max_length=200)),
                ("starts", models.BinaryField(help_text="int64 start minute per column")),
                ("sums", models.BinaryField(help_text="float64 (good, valid, events, present) per column")),
            ],
        ),
    ]
