"""The overview's "releases in progress": open releases, newest first (read-only)."""

from __future__ import annotations

from typing import Any

IN_PROGRESS_STATES = ("pending_approval", "approved", "rolling_out", "paused")


def in_progress(*, limit: int = 10) -> list[Any]:
    """Releases waiting for approval, approved, rolling out or paused; one query."""
    from routing.models.releases import Release

    return list(
        Release.objects.filter(state__in=IN_PROGRESS_STATES).select_related("service").order_by("-created_at", "-id")[:limit]
    )
