"""manage.py seed_gateways --state-dir var/gateways: register the demo gateways and write their configs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from controlplane.errors import DomainError
from routing.fleet.demo import fleet_demo_seed


class Command(BaseCommand):
    help = "Register two edge and one cloud reference gateway for a demo service and write their configs."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--state-dir", default=str(settings.DATA_DIR / "gateways"))
        parser.add_argument("--service", default="shelf-vision")
        parser.add_argument("--control-plane-url", default=settings.PUBLIC_URL)
        parser.add_argument("--base-port", type=int, default=9101)
        parser.add_argument("--push-telemetry", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            rows = fleet_demo_seed(
                state_dir=options["state_dir"],
                service_name=options["service"],
                control_plane_url=options["control_plane_url"],
                base_port=options["base_port"],
                actor="seed_gateways",
                push_telemetry=options["push_telemetry"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        for row in rows:
            self.stdout.write(f"{row['name']} (id {row['id']}) on port {row['port']}: {row['config_path']}")
        self.stdout.write(f"start them with: python -m gateway.launch {options['state_dir']}")
