from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from controlplane.errors import ValidationFailed
from controlplane.services import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--expires-days", type=int, default=None, help="0 or omitted: no expiry")

    def handle(self, *args: Any, username: str, name: str, expires_days: int | None, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if expires_days is not None and expires_days < 0:
            raise CommandError("--expires-days must be 0 or more")
        expires_at = timezone.now() + timedelta(days=expires_days) if expires_days else None
        try:
            _token, raw = api_token_create(actor="cli", user=user, name=name, expires_at=expires_at)
        except ValidationFailed as exc:
            raise CommandError("; ".join(f"{p['path']}: {p['message']}" for p in exc.problems)) from None
        self.stdout.write(raw)
