"""`manage.py generate_report --service shelf-vision --period week --start 2026-11-16 [--email a@b]`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import ValidationFailed


class Command(BaseCommand):
    help = "Generate an error-budget report snapshot for a service or a team (and optionally email it)."

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--service", help="one service, by name")
        scope.add_argument("--team", help="every service with this owner")
        parser.add_argument("--period", choices=["week", "month"], required=True)
        parser.add_argument(
            "--start",
            default="previous",
            help='local date the period starts on (a Monday, or the 1st), or "previous"',
        )
        parser.add_argument("--tz", dest="time_zone", default=None, help="IANA time zone (default TIME_ZONE)")
        parser.add_argument("--email", action="append", default=[], help="recipient (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        from slo.reports.render import report_url
        from slo.reports.services import report_generate

        data: dict[str, Any] = {"period": options["period"], "start": options["start"]}
        data["service" if options["service"] else "team"] = options["service"] or options["team"]
        if options["time_zone"]:
            data["time_zone"] = options["time_zone"]
        if options["email"]:
            data["recipients"] = options["email"]
        try:
            report = report_generate(actor="manage.py generate_report", data=data, trigger="command")
        except ValidationFailed as exc:
            lines = [f"  {p['path']}: {p['message']}" for p in exc.problems]
            raise CommandError("\n".join([exc.message, *lines])) from None
        summary = report.numbers["summary"]
        self.stdout.write(
            f"report {report.pk}: {report.scope_kind} {report.scope_value} {report.period} {report.period_label} "
            f"({report.time_zone}) - SLOs met {summary['slos_met']}, missed {summary['slos_missed']}, "
            f"no data {summary['slos_no_data']}; alert episodes {summary['alert_episodes']}"
        )
        self.stdout.write(report_url(report))
        if options["email"]:
            # Send now rather than wait for a worker; the delivery claim keeps the queued task from
            # sending it a second time.
            from django.utils import timezone

            from slo.reports.services import report_delivery_send

            for delivery in report.deliveries.all():
                state = report_delivery_send(delivery_id=delivery.pk, now=timezone.now())
                self.stdout.write(f"email to {len(delivery.recipients)} recipient(s): {state}")
