"""Template filters for evidence and times (the logic lives in `web.presenters`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template
from django.utils import timezone

from controlplane.lib.charts import in_zone
from web import presenters

register = template.Library()


@register.filter
def words(value: object) -> str:
    """'burn_rate' -> 'burn rate'."""
    return presenters.words(value)


@register.filter
def in_active_zone(figure: Mapping[str, Any]) -> dict[str, Any]:
    """A chart's figure with its times in the reader's zone (the one `TimeZoneMiddleware` activated)."""
    return in_zone(figure, timezone.get_current_timezone())
