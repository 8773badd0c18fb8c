"""Template filters for evidence and times (the logic lives in `web.presenters`)."""

from __future__ import annotations

from django import template

from web import presenters

register = template.Library()


@register.filter
def words(value: object) -> str:
    """'burn_rate' -> 'burn rate'."""
    return presenters.words(value)
