"""The service page's capacity section: active recommendations and the recently cleared ones."""

from __future__ import annotations

from typing import Any

from routing.capacity.selectors import recommendation_queryset
from routing.models.capacity import ACTIVE, CLEARED
from routing.models.responses import BudgetResponse


def capacity_context(*, service_name: str) -> dict[str, Any]:
    return {
        "active": list(recommendation_queryset(service=service_name, state=ACTIVE)[:50]),
        "cleared": list(recommendation_queryset(service=service_name, state=CLEARED)[:10]),
        "responses": list(
            BudgetResponse.objects.filter(service__name=service_name).select_related("release")[:5]
        ),
    }
