"""Shared fixtures: one user per role, and API clients authenticated with real tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

# Django imports live inside the fixtures so pure-core tests also run with `-p no:django`.

ROLES = ("viewer", "operator", "approver", "admin")


def make_user(username: str, *roles: str, superuser: bool = False) -> Any:
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(
        username=username, password="pw-" + username + "-123456", is_superuser=superuser
    )
    for role in roles:
        # get_or_create: transactional tests flush the groups the data migration made.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def users(db: Any) -> dict[str, Any]:
    """viewer, operator, approver, admin (by group), a second approver, and an outsider without a role."""
    return {
        "viewer": make_user("vera", "viewer"),
        "operator": make_user("otto", "operator"),
        "approver": make_user("anna", "approver"),
        "approver2": make_user("abel", "approver"),
        "admin": make_user("ada", "admin"),
        "outsider": make_user("olaf"),
    }


@pytest.fixture
def api_for(users: dict[str, Any]) -> Callable[[str | None], Any]:
    """api_for("operator") -> an APIClient sending that user's bearer token; None -> anonymous."""
    from rest_framework.test import APIClient

    from controlplane.services import api_token_create

    cache: dict[str | None, APIClient] = {}

    def build(role: str | None) -> APIClient:
        if role not in cache:
            client = APIClient()
            if role is not None:
                _token, raw = api_token_create(actor=None, user=users[role], name=f"test-{role}")
                client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
            cache[role] = client
        return cache[role]

    return build


@pytest.fixture
def service_doc() -> dict[str, Any]:
    return {
        "name": "shelf-vision",
        "display_name": "Shelf vision",
        "service_class": "interactive",
        "owner": "vision-team",
        "tiers": ["edge", "private_cloud", "public_cloud"],
        "labels": {"team": "vision"},
    }


@pytest.fixture
def slo_doc() -> dict[str, Any]:
    return {
        "name": "edge-latency",
        "service": "shelf-vision",
        "tier": "edge",
        "sli": {"kind": "latency", "threshold_ms": 150},
        "objective": 99.5,
        "window": {"type": "rolling", "days": 28},
    }


@pytest.fixture
def service(users: dict[str, Any], service_doc: dict[str, Any]) -> Any:
    from slo.services import service_create

    return service_create(actor=users["operator"], data=service_doc)


@pytest.fixture(autouse=True)
def _fast_password_hashing(request: pytest.FixtureRequest) -> None:
    """Password hashing is deliberately slow; tests create many users and need no protection."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(request: pytest.FixtureRequest) -> None:
    """Rate limits and failed-credential counts live in the cache: each test starts with none, as
    a test database starts empty (otherwise refusals in one test would throttle the next)."""
    if not request.config.pluginmanager.hasplugin("django"):
        return
    from django.core.cache import cache

    cache.clear()


def _serialized_rollback(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    return bool(marker and marker.kwargs.get("serialized_rollback"))


def _transactional(item: pytest.Item) -> bool:
    marker = item.get_closest_marker("django_db")
    names = getattr(item, "fixturenames", ())
    return bool(
        (marker and (marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")))
        or "transactional_db" in names
        or "live_server" in names
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Among the transactional tests (pytest-django groups them together), run the ones with
    `serialized_rollback` first. A plain transactional test's closing flush re-runs post_migrate,
    which re-creates content types under new ids; a serialized test after it would then restore
    the originals next to them and fail on the unique (app_label, model) key. After a serialized
    test the flush leaves the tables empty instead, which every test copes with."""
    flags = [_transactional(item) for item in items]
    if True not in flags:
        return
    start = flags.index(True)
    end = len(flags) - flags[::-1].index(True)
    block = items[start:end]
    block.sort(key=lambda item: not (_transactional(item) and _serialized_rollback(item)))
    items[start:end] = block
