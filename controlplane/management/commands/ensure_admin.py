from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create the admin user if no superuser exists (password from ADMIN_PASSWORD, or printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        users = get_user_model().objects
        if users.filter(is_superuser=True).exists():
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        users.create_superuser(username=username, email="", password=password)
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(f"created admin user {username!r} with the password from ADMIN_PASSWORD")
        else:
            # Printed once on purpose: this is the only way a fresh install learns it.
            self.stdout.write(f"created admin user {username!r} with password: {password}")
