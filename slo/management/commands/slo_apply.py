from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import Conflict, ValidationFailed
from slo.apply import read_directory, read_tarball, slo_apply


class Command(BaseCommand):
    help = (
        "Apply a directory (or .tar.gz) of OpenSLO files: print the plan (create, update with diff, "
        "unchanged, prune), then apply it in one transaction. --check only plans, and fails when the "
        "directory and the catalog differ."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="a directory of .yaml/.yml files, or a .tar.gz of them")
        parser.add_argument("--source", help="apply source name (default: the directory's name)")
        parser.add_argument("--adopt", action="store_true", help="take over SLOs made outside this directory")
        parser.add_argument(
            "--prune", action="store_true", help="archive SLOs of this source the directory no longer holds"
        )
        parser.add_argument("--check", action="store_true", help="plan only; exit 1 when anything differs")
        parser.add_argument(
            "--dry-run", action="store_true", help="plan only; exit 0 unless the input is bad"
        )

    def handle(
        self,
        *args: Any,
        path: str,
        source: str | None,
        adopt: bool,
        prune: bool,
        check: bool,
        dry_run: bool,
        **options: Any,
    ) -> None:
        target = Path(path)
        try:
            if target.is_file():
                files = read_tarball(target.read_bytes(), name=str(target))
                default = target.name.removesuffix(".gz").removesuffix(".tgz").removesuffix(".tar")
            else:
                files = read_directory(target)
                default = target.resolve().name
            report = slo_apply(
                actor="cli",
                files=files,
                source=source or default,
                adopt=adopt,
                prune=prune,
                dry_run=check or dry_run,
            )
        except (ValidationFailed, Conflict) as exc:
            lines = exc.extra.get("lines", [])
            for line in lines:
                self.stdout.write(line)
            raise CommandError(
                "; ".join(f"{p['path']}: {p['message']}" for p in exc.problems) or exc.message
            ) from None
        except OSError as exc:
            raise CommandError(f"{path}: cannot read ({exc.strerror})") from None
        for warning in report["warnings"]:
            self.stderr.write(f"warning: {warning['path']}: {warning['message']}")
        for line in report["lines"]:
            self.stdout.write(line)
        counts = ", ".join(f"{n} {kind}" for kind, n in report["summary"].items() if n)
        verb = "applied" if report["applied"] else "plan"
        self.stdout.write(f"{verb} (source {report['source']}): {counts or 'nothing'}")
        if check and report["differs"]:
            raise CommandError("the directory and the control plane differ")
        if report["summary"]["refuse"]:
            raise CommandError("some SLOs are managed elsewhere: pass --adopt to take them over")
