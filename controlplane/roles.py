"""Roles are Django groups. Each role includes the ones before it.

viewer < operator < approver < admin. An approver can do what an operator can,
except that the release service refuses an approval from a release's author.
"""

from __future__ import annotations

from typing import Any

VIEWER = "viewer"
OPERATOR = "operator"
APPROVER = "approver"
ADMIN = "admin"

ROLE_ORDER = (VIEWER, OPERATOR, APPROVER, ADMIN)


def user_roles(user: Any) -> frozenset[str]:
    """The set of roles a user holds, including the ones implied by higher roles."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_controlplane_roles", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        held = {ADMIN}
    else:
        held = set(user.groups.filter(name__in=ROLE_ORDER).values_list("name", flat=True))
    # An approver is not automatically an operator: four-eyes setups often keep
    # approvers from authoring. Admin implies everything; operator implies viewer.
    roles = set(held)
    if ADMIN in held:
        roles.update(ROLE_ORDER)
    if held & {OPERATOR, APPROVER}:
        roles.add(VIEWER)
    result = frozenset(roles)
    user._controlplane_roles = result
    return result


def has_role(user: Any, role: str) -> bool:
    return role in user_roles(user)
