from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from slo.interop import openslo_export_text
from slo.models import Slo


class Command(BaseCommand):
    help = "Print SLOs as OpenSLO v1 YAML (all, or one service's)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--service", default=None)

    def handle(self, *args: Any, service: str | None, **options: Any) -> None:
        slos = Slo.objects.filter(archived_at__isnull=True).select_related("service")
        if service:
            slos = slos.filter(service__name=service)
        self.stdout.write(openslo_export_text(slos=list(slos)))
