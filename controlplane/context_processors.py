from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from controlplane.roles import user_roles


def roles(request: HttpRequest) -> dict[str, Any]:
    held = user_roles(getattr(request, "user", None))
    return {
        "roles": held,
        "can_operate": "operator" in held or "admin" in held,
        "can_approve": "approver" in held or "admin" in held,
        "is_admin_role": "admin" in held,
    }
