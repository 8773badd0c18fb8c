"""The overview's "releases in progress": open releases, newest first (read-only)."""

from __future__ import annotations

from typing import Any

from routing.releases.machine import APPROVED, PAUSED, PENDING_APPROVAL, ROLLING_OUT
from routing.releases.selectors import release_queryset

# Open releases past their draft: waiting for approval, approved, rolling out or paused.
IN_PROGRESS_STATES = (PENDING_APPROVAL, APPROVED, ROLLING_OUT, PAUSED)


def in_progress(*, limit: int = 10) -> list[Any]:
    """Releases waiting for approval, approved, rolling out or paused; one query."""
    return list(
        release_queryset().filter(state__in=IN_PROGRESS_STATES).order_by("-created_at", "-id")[:limit]
    )
