from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from slo.models import Slo
from slo.rules_export import slo_rule_file


class Command(BaseCommand):
    help = (
        "Print a Prometheus rule file (recordings, burn-rate and telemetry alerts) for the SLOs (all, or "
        "one service's). SLOs whose metrics are not in Prometheus are left out; the file's header and "
        "stderr say which and why."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--service", default=None)
        parser.add_argument("--interval", default=None, help="rule group evaluation interval, e.g. 30s")

    def handle(self, *args: Any, service: str | None, interval: str | None, **options: Any) -> None:
        slos = (
            Slo.objects.filter(archived_at__isnull=True)
            .select_related("service")
            .order_by("service__name", "name")
        )
        if service:
            slos = slos.filter(service__name=service)
        rules, problems = slo_rule_file(slos=list(slos), interval=interval)
        if rules is None:
            raise CommandError("\n".join(f"{p.path}: {p.message}" for p in problems))
        for skipped in rules.skipped:
            self.stderr.write(f"skipped {skipped.title}: {skipped.reason}")
        self.stdout.write(rules.yaml(), ending="")
