"""manage.py ensure_webhook_secret --file /run/secrets/alertmanager_webhook: make sure the file holds a
valid Alertmanager webhook secret (`amw_...`), for deployments that hand it to Alertmanager as
`http_config.authorization.credentials_file`.

Idempotent: a file whose secret is registered is left alone. Otherwise a secret of that name is
(re)created through the audited service and its raw value written into the file, which is the only
place it is kept (the database keeps its hash). An existing file is overwritten in place, so its
owner and mode (set by whoever created it, e.g. readable by Alertmanager's group) stay; a new file
is created with mode 0600.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.errors import DomainError
from routing.models.releases import WebhookSecret
from routing.releases import alertmanager

ACTOR = "ensure_webhook_secret"


def _registered(raw: str) -> bool:
    if not raw.startswith(alertmanager.WEBHOOK_SECRET_PREFIX):
        return False
    return WebhookSecret.objects.filter(secret_hash=hashlib.sha256(raw.encode()).hexdigest()).exists()


def _write(path: Path, raw: str) -> None:
    if path.exists():
        with path.open("w") as handle:  # truncates in place: owner and mode are kept
            handle.write(raw + "\n")
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw + "\n")


class Command(BaseCommand):
    help = "Write a registered Alertmanager webhook secret into a file (kept when it is still valid)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", required=True, help="where Alertmanager reads the secret from")
        parser.add_argument("--name", default="alertmanager", help="the secret's name in the control plane")

    def handle(self, *args: Any, file: str, name: str, **options: Any) -> None:
        path = Path(file)
        current = path.read_text().strip() if path.exists() else ""
        if current and _registered(current):
            self.stdout.write(f"webhook secret in {path} is registered; kept")
            return
        try:
            existing = WebhookSecret.objects.filter(name=name).first()
            if existing is not None:  # its raw value is lost with the file: replace it
                alertmanager.webhook_secret_delete(actor=ACTOR, secret_id=existing.pk)
            row, raw = alertmanager.webhook_secret_create(actor=ACTOR, name=name)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        try:
            _write(path, raw)
        except OSError as exc:
            alertmanager.webhook_secret_delete(actor=ACTOR, secret_id=row.pk)  # nobody could ever use it
            raise CommandError(f"cannot write {path}: {exc.strerror}") from None
        self.stdout.write(f"webhook secret {name!r} ({row.hint}...) written to {path}")
