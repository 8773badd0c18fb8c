"""Deny by default: a view is reachable only by the roles it declares.

A view sets `read_role` (GET/HEAD/OPTIONS) and `write_role` (everything else),
or `action_roles = {"approve": APPROVER}` for viewset actions. Anonymous
requests get 401, authenticated ones without the role 403.
"""

from __future__ import annotations

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request

from controlplane.roles import has_role, user_roles


class RolePermission(permissions.BasePermission):
    message = "your role does not allow this"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        if not hasattr(view, request.method.lower()):
            return True  # let DRF answer 405 for a method the view does not have
        required = required_role(request, view)
        if required is None:
            return False
        return has_role(request.user, required)


def required_role(request: Request, view: Any) -> str | None:
    action = getattr(view, "action", None)
    action_roles = getattr(view, "action_roles", {}) or {}
    if action and action in action_roles:
        return action_roles[action]
    if request.method in permissions.SAFE_METHODS:
        return getattr(view, "read_role", None)
    return getattr(view, "write_role", None)


class AnyRole(permissions.BasePermission):
    """Any authenticated user holding at least one role (schema and docs pages)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(user_roles(request.user))
