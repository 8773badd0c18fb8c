"""Credential rotation with a grace window: the previous gateway token (hash) and signing secret
(encrypted) with their expiries. Blank/nullable columns: existing gateways simply have none."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0004_cache_alerts_task'),
    ]

    operations = [
        migrations.AddField(
            model_name='gateway',
            name='previous_signing_secret_encrypted',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='gateway',
            name='previous_signing_secret_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='gateway',
            name='previous_token_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='gateway',
            name='previous_token_hash',
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddIndex(
            model_name='gateway',
            index=models.Index(condition=models.Q(('previous_token_hash', ''), _negated=True), fields=['previous_token_hash'], name='gateway_prev_token_idx'),
        ),
    ]
