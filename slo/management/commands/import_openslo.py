from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import ValidationFailed
from slo.interop import openslo_import


class Command(BaseCommand):
    help = "Import OpenSLO v1 YAML (services and SLOs), all or nothing. '-' reads standard input."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path")
        parser.add_argument("--dry-run", action="store_true", help="report without storing")

    def handle(self, *args: Any, path: str, dry_run: bool, **options: Any) -> None:
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{path}: cannot read ({exc})") from None
        try:
            result = openslo_import(actor="cli", text=text, dry_run=dry_run)
        except ValidationFailed as exc:
            raise CommandError(
                "; ".join(f"{p['path']}: {p['message']}" for p in exc.problems) or exc.message
            ) from None
        for problem in result["unsupported"]:
            self.stderr.write(f"warning: {problem['path']}: {problem['message']}")
        for source in result["datasources"]:
            reason = f" ({source['reason']})" if source.get("reason") else ""
            self.stdout.write(
                f"DataSource {source['name']}: telemetry source {source['telemetry_source']} {source['action']}{reason}"
            )
        prefix = "would import" if dry_run else "imported"
        self.stdout.write(
            f"{prefix}: {len(result['services_created'])} services created, "
            f"{len(result['created'])} SLOs created, {len(result['updated'])} SLOs updated"
        )
