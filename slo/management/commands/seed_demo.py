from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

# Each area adds its demo data through a `seed_demo(*, days, stdout)` function, in order.
DEMO_SEEDERS = (
    "slo.corrections.demo",
    "slo.demo_history",
    "slo.composites.demo",
    "routing.demo",
    "slo.reports.demo",
)


class Command(BaseCommand):
    help = "Seed demo services, SLOs, telemetry history, routing documents and gateways (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=21, help="days of telemetry history to generate")

    def handle(self, *args: Any, days: int, **options: Any) -> None:
        from slo.demo import seed_demo_catalog

        created = seed_demo_catalog()
        self.stdout.write(f"demo catalog: {created['services']} services and {created['slos']} SLOs created")
        for module_name in DEMO_SEEDERS:
            if importlib.util.find_spec(module_name) is None:
                continue  # that area has no demo data yet
            module = importlib.import_module(module_name)
            module.seed_demo(days=days, stdout=self.stdout)
