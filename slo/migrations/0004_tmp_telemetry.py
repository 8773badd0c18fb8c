# No-op. routing/migrations/0003_releases.py was generated while this name briefly existed and
# depends on it; kept so the graph stays valid. The lead may squash it when regenerating migrations.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("slo", "0003_telemetry_storage")]
    operations = []
