"""The one time zone rule of the pages: every timestamp is shown in the user's chosen zone (UTC by
default) and says which; the API always answers in UTC ISO 8601; reports keep their schedule's zone.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from django.db import DatabaseError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from web.models import BROWSER_ZONE, UserPreference

BROWSER_COOKIE = "browser_tz"


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def valid_zone(name: str) -> bool:
    return name == BROWSER_ZONE or name == "UTC" or name in zone_names()


def preferred_zone(user: Any) -> str:
    """The user's stored choice, "UTC" without one. With the database unreachable, UTC: the view
    that follows meets the same outage and answers 503 through the error middleware, where an
    exception raised here (middleware runs outside process_exception) would be a 500."""
    try:
        if not getattr(user, "is_authenticated", False):
            return "UTC"
        zone = UserPreference.objects.filter(user=user).values_list("time_zone", flat=True).first()
    except DatabaseError:
        return "UTC"
    return zone or "UTC"


def effective_zone(choice: str, browser_cookie: str | None) -> str:
    """The zone pages use: the browser's (when chosen and reported, and known) or the stored one."""
    if choice == BROWSER_ZONE:
        return browser_cookie if browser_cookie and browser_cookie in zone_names() else "UTC"
    return choice if valid_zone(choice) else "UTC"


def save_zone(*, user: Any, time_zone: str) -> UserPreference:
    """Store a user's zone choice (validated by the caller's form), audited."""
    from controlplane.audit import audit_record

    with transaction.atomic():
        pref, _ = UserPreference.objects.select_for_update().get_or_create(user=user)
        before = pref.time_zone
        pref.time_zone = time_zone
        pref.save(update_fields=["time_zone", "updated_at"])
        audit_record(
            actor=user,
            action="update",
            obj=pref,
            before={"time_zone": before},
            after={"time_zone": time_zone},
        )
    return pref


class TimeZoneMiddleware:
    """Activates the user's zone for page requests; API and metrics requests stay in UTC."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if path.startswith(("/api/", "/metrics", "/healthz", "/admin/")):
            timezone.deactivate()
            return self.get_response(request)
        zone = effective_zone(preferred_zone(request.user), request.COOKIES.get(BROWSER_COOKIE))
        timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
