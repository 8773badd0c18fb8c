"""Demo data for reports: a weekly schedule for `shelf-vision`, and last week's report so the
reports page is not empty. Idempotent. Called from `manage.py seed_demo` (after the telemetry
history, so the report has numbers)."""

from __future__ import annotations

from typing import Any

from slo.models import Service
from slo.models.reports import Report, ReportSchedule

DEMO_SCHEDULE = {
    "name": "shelf-vision-weekly",
    "service": "shelf-vision",
    "period": "week",
    "time_zone": "Europe/Paris",
    "recipients": ["retail-vision-sre@example.com"],
    "enabled": True,
}


def seed_demo(*, days: int, stdout: Any) -> None:
    from slo.reports.services import report_generate, report_schedule_save

    if not Service.objects.filter(name=DEMO_SCHEDULE["service"]).exists():
        stdout.write("reports: no shelf-vision service; demo schedule skipped")
        return
    if not ReportSchedule.objects.filter(name=DEMO_SCHEDULE["name"]).exists():
        report_schedule_save(actor="demo-seed", data=dict(DEMO_SCHEDULE))
        stdout.write(
            f"reports: schedule {DEMO_SCHEDULE['name']} created (Mondays 06:00 {DEMO_SCHEDULE['time_zone']})"
        )
    # Last complete week, once; only when the history reaches back that far.
    if days >= 8 and not Report.objects.filter(scope_value=DEMO_SCHEDULE["service"], trigger="demo").exists():
        report = report_generate(
            actor="demo-seed",
            trigger="demo",
            data={
                "service": DEMO_SCHEDULE["service"],
                "period": "week",
                "time_zone": DEMO_SCHEDULE["time_zone"],
            },
        )
        stdout.write(f"reports: report {report.pk} for {report.period_label} generated")
