"""Per-user page preferences."""

from __future__ import annotations

from django.conf import settings
from django.db import models

BROWSER_ZONE = "browser"  # the zone the browser reports (a cookie set by static/js/timezone.js)


class UserPreference(models.Model):
    """How one user wants pages shown. `time_zone` is "UTC", an IANA zone name, or "browser"."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="web_preference"
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"
