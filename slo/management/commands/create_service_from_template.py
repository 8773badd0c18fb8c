from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import DomainError
from slo.template_services import service_from_template
from slo.templates import TEMPLATES


class Command(BaseCommand):
    help = "Create a service and its SLOs from an inference-server template bound to a telemetry source."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("template", choices=sorted(TEMPLATES))
        parser.add_argument("--source", required=True, help="telemetry source name")
        parser.add_argument("--service", required=True, help="name of the service to create")
        parser.add_argument("--param", action="append", default=[], metavar="K=V", help="template parameter")
        parser.add_argument("--json", action="store_true", help="print the full result as JSON")

    def handle(
        self, *args: Any, template: str, source: str, service: str, param: list[str], **options: Any
    ) -> None:
        params: dict[str, str] = {}
        for item in param:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--param {item!r}: expected key=value")
            params[key.strip()] = value.strip()
        try:
            result = service_from_template(
                actor="cli", template=template, source=source, service_name=service, params=params
            )
        except DomainError as exc:
            raise CommandError(
                "; ".join(f"{p['path']}: {p['message']}" for p in exc.problems) or exc.message
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"service {result['service']['name']} created from template {template} on source {source}"
        )
        for slo in result["slos"]:
            self.stdout.write(f"  SLO {slo['name']} (objective {slo['objective']:g}%)")
        for t in result["thresholds"]:
            note = "" if t["exact"] else f" (asked {t['requested_ms']:g} ms: not a bucket boundary)"
            self.stdout.write(
                f"  {t['slo']}: threshold {t['threshold_ms']:g} ms = le {t['le']} of {t['histogram']}{note}"
            )
        for s in result["skipped"]:
            self.stdout.write(f"  skipped {s['slo']}: {s['reason']}")
        for w in result["warnings"]:
            self.stderr.write(f"warning: {w['slo']}: {w['message']}")
        if result["source"]["services_extended"]:
            self.stdout.write(f"  source {source} now also serves {service}")
