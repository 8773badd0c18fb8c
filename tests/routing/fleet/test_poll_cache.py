"""The config poll's 304 from the Redis poll cache (routing.fleet.pollcache), against real Redis and
PostgreSQL: answered without a query once cached, and every change that alters the answer (a new
desired revision, a rotated or retired token, a deleted gateway) is seen by the very next poll."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from routing.fleet import pollcache
from routing.fleet.credentials import hash_gateway_token
from routing.fleet.services import gateway_rotate, gateway_set_desired
from routing.models.fleet import Gateway
from tests.gateway.support import good_bundle

pytestmark = pytest.mark.django_db


def _poll(token: str, gateway: Gateway, revision: int) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(
        f"/api/v1/gateways/{gateway.pk}/config", HTTP_IF_NONE_MATCH=f'"rev-{revision}"'
    ).status_code


def _desired(users, *gateways) -> None:
    gateway_set_desired(
        actor=users["operator"],
        gateway_ids=[g.pk for g in gateways],
        bundle_for=good_bundle(0),
        reason="test",
    )


@pytest.fixture(autouse=True)
def _redis_reachable(monkeypatch):
    monkeypatch.setattr(pollcache, "_down_until", 0.0)


def test_a_repeated_poll_is_answered_from_redis_without_a_query(users, register, django_assert_num_queries):
    one = register("edge-1")
    _desired(users, one.gateway)
    with django_assert_num_queries(1):  # not cached yet: the token read, whose answer is stored
        assert _poll(one.token, one.gateway, 1) == 304
    with django_assert_num_queries(0):
        assert _poll(one.token, one.gateway, 1) == 304
    assert pollcache.lookup(one.gateway.pk)[1] == (hash_gateway_token(one.token).encode(), 1)


def test_a_new_desired_revision_is_seen_by_the_next_poll(users, register):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    assert _poll(one.token, one.gateway, 1) == 304  # from the cache
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 200  # the bundle of revision 2
    assert _poll(one.token, one.gateway, 2) == 304
    assert _poll(one.token, one.gateway, 2) == 304  # cached again, under the new stamp


def test_a_token_retired_without_grace_is_refused_by_the_next_poll(users, register):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    assert _poll(one.token, one.gateway, 1) == 304  # from the cache
    new = gateway_rotate(
        actor=users["operator"], gateway_id=one.gateway.pk, signing_secret=False, grace_seconds=0
    )
    assert _poll(one.token, one.gateway, 1) == 401
    assert _poll(new.token, one.gateway, 1) == 304
    assert _poll(new.token, one.gateway, 1) == 304
    assert _poll(one.token, one.gateway, 1) == 401  # the cached row is the new token's


def test_within_the_grace_window_the_previous_token_is_still_checked_in_the_database(users, register):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    new = gateway_rotate(
        actor=users["operator"], gateway_id=one.gateway.pk, signing_secret=False, grace_seconds=600
    )
    assert _poll(new.token, one.gateway, 1) == 304  # fills the cache with the new token
    assert _poll(one.token, one.gateway, 1) == 304  # the previous token: the database path
    one.gateway.refresh_from_db()
    assert one.gateway.previous_token_last_used_at is not None  # its use is still recorded


def test_a_deleted_gateway_is_refused_by_the_next_poll(users, register):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    Gateway.objects.filter(pk=one.gateway.pk).get().delete()
    assert _poll(one.token, one.gateway, 1) == 401


def test_another_gateways_token_never_gets_the_cached_answer(users, register):
    one, two = register("edge-1"), register("edge-2")
    _desired(users, one.gateway, two.gateway)
    assert _poll(one.token, one.gateway, 1) == 304  # gateway 1's row is cached
    assert _poll(two.token, one.gateway, 1) == 403
    assert _poll("gw_not-a-real-token", one.gateway, 1) == 401


def test_a_row_read_before_a_change_is_never_trusted_after_it(users, register):
    """The race: a poll reads the old row from PostgreSQL, the change commits and invalidates, then
    the poll stores what it read. Its row carries the stamp it read before, which the change
    deleted, so the next poll does not trust it."""
    one = register("edge-1")
    _desired(users, one.gateway)
    stamp, _ = pollcache.lookup(one.gateway.pk)  # the poll starts: stamp, then its database read
    assert stamp is not None
    _desired(users, one.gateway)  # revision 2 commits meanwhile
    assert pollcache.lookup(one.gateway.pk)[0] not in (None, stamp)  # another poll: a fresh stamp
    pollcache.fill(one.gateway.pk, stamp, hash_gateway_token(one.token), 1)  # the poll stores revision 1
    assert _poll(one.token, one.gateway, 1) == 200


def test_a_row_stored_while_the_change_commits_is_dropped_after_the_commit(
    users, register, django_capture_on_commit_callbacks
):
    """A poll that reads the old row after the change's first delete but before its commit stores it
    under a fresh stamp; the delete after the commit drops that stamp too."""
    one = register("edge-1")
    _desired(users, one.gateway)
    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        _desired(users, one.gateway)  # revision 2, not committed yet
    stamp, _ = pollcache.lookup(one.gateway.pk)
    pollcache.fill(one.gateway.pk, stamp, hash_gateway_token(one.token), 1)  # the old row it read
    assert pollcache.lookup(one.gateway.pk)[1] is not None
    for callback in after_commit:
        callback()  # the commit
    assert pollcache.lookup(one.gateway.pk)[1] is None
    assert _poll(one.token, one.gateway, 1) == 200


def test_a_heartbeat_does_not_empty_the_cache(users, register, django_assert_num_queries):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {one.token}")
    beat = client.post(
        f"/api/v1/gateways/{one.gateway.pk}/heartbeat/", {"applied_revision": 1}, format="json"
    )
    assert beat.status_code == 200
    with django_assert_num_queries(0):
        assert _poll(one.token, one.gateway, 1) == 304


def test_without_redis_polls_read_the_database_and_credential_changes_fail_instead_of_going_unseen(
    users, register
):
    import redis

    one = register("edge-1")
    _desired(users, one.gateway)
    with override_settings(CACHE_URL="redis://127.0.0.1:9/0"):  # nothing listens on the discard port
        assert _poll(one.token, one.gateway, 1) == 304  # the database path
        assert _poll(one.token, one.gateway, 1) == 304
        with pytest.raises(redis.RedisError):
            gateway_rotate(
                actor=users["operator"], gateway_id=one.gateway.pk, signing_secret=False, grace_seconds=0
            )
    one.gateway.refresh_from_db()
    assert one.gateway.token_hash == hash_gateway_token(one.token)  # the rotation rolled back


def test_the_cache_is_off_without_a_redis_cache_url(users, register, django_assert_num_queries):
    one = register("edge-1")
    _desired(users, one.gateway)
    with override_settings(CACHE_URL=""):
        assert _poll(one.token, one.gateway, 1) == 304
        with django_assert_num_queries(1):
            assert _poll(one.token, one.gateway, 1) == 304


# -- in front of Django's handler (controlplane.wsgi) ---------------------------------------------


def _wsgi(gateway: Gateway, token: str, revision: int, **environ):
    """(status, headers) of routing.api.fastpath.ConfigPollWSGI, or ("django", None) when it hands
    the request on."""
    from routing.api.fastpath import ConfigPollWSGI

    answered: list = []
    app = ConfigPollWSGI(lambda environ, start_response: answered.append(("django", None)) or [])
    base = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/api/v1/gateways/{gateway.pk}/config",
        "wsgi.url_scheme": "http",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_IF_NONE_MATCH": f'"rev-{revision}"',
    }
    body = app({**base, **environ}, lambda status, headers: answered.append((status, dict(headers))))
    assert list(body) == []
    return answered[0]


def test_the_wsgi_fast_path_is_wired_in_front_of_django():
    from controlplane import wsgi
    from routing.api.fastpath import ConfigPollWSGI

    assert isinstance(wsgi.application, ConfigPollWSGI)


@pytest.mark.parametrize("https", [False, True])
def test_the_wsgi_304_carries_the_headers_of_the_stacks_304(users, register, settings, https):
    settings.SECURE_SSL_REDIRECT = https
    settings.SECURE_HSTS_SECONDS = 3600 if https else 0
    one = register("edge-1")
    _desired(users, one.gateway)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {one.token}")
    stack = client.get(
        f"/api/v1/gateways/{one.gateway.pk}/config",
        HTTP_IF_NONE_MATCH='"rev-1"',
        HTTP_X_REQUEST_ID="r-1",
        secure=https,
    )
    assert stack.status_code == 304  # and the cache is filled
    status, headers = _wsgi(
        one.gateway, one.token, 1, HTTP_X_REQUEST_ID="r-1", **({"wsgi.url_scheme": "https"} if https else {})
    )
    assert status == "304 Not Modified"
    expected = {k: v for k, v in stack.headers.items() if k.lower() not in ("content-type", "content-length")}
    assert headers == expected
    assert ("Strict-Transport-Security" in headers) is https


def test_the_wsgi_fast_path_hands_on_what_the_cache_cannot_answer(users, register, settings):
    one, two = register("edge-1"), register("edge-2")
    _desired(users, one.gateway)
    assert _wsgi(one.gateway, one.token, 1) == ("django", None)  # not cached yet
    assert _poll(one.token, one.gateway, 1) == 304  # the middleware's database read fills it
    assert _wsgi(one.gateway, one.token, 1)[0] == "304 Not Modified"
    assert _wsgi(one.gateway, one.token, 2) == ("django", None)  # another revision: the stack's 200
    assert _wsgi(one.gateway, two.token, 1) == ("django", None)  # another gateway's token: 403
    assert _wsgi(one.gateway, "gw_not-a-real-token", 1) == ("django", None)  # 401
    assert _wsgi(one.gateway, one.token, 1, REQUEST_METHOD="HEAD") == ("django", None)
    assert _wsgi(one.gateway, one.token, 1, PATH_INFO=f"/api/v1/gateways/{one.gateway.pk}/configx") == (
        "django",
        None,
    )
    settings.SECURE_SSL_REDIRECT = True
    assert _wsgi(one.gateway, one.token, 1) == ("django", None)  # plain HTTP: SecurityMiddleware redirects
    status, headers = _wsgi(
        one.gateway, one.token, 1, HTTP_X_REQUEST_ID="bad id\n", **{"wsgi.url_scheme": "https"}
    )
    assert status == "304 Not Modified" and len(headers["X-Request-ID"]) == 32  # a fresh id, not the bad one


def test_a_change_reaches_the_wsgi_fast_path_at_once(users, register):
    one = register("edge-1")
    _desired(users, one.gateway)
    assert _poll(one.token, one.gateway, 1) == 304
    assert _wsgi(one.gateway, one.token, 1)[0] == "304 Not Modified"
    new = gateway_rotate(
        actor=users["operator"], gateway_id=one.gateway.pk, signing_secret=False, grace_seconds=0
    )
    assert _wsgi(one.gateway, one.token, 1) == ("django", None)
    assert _wsgi(one.gateway, new.token, 1) == ("django", None)  # not cached for the new token yet
    _desired(users, one.gateway)
    assert _poll(new.token, one.gateway, 2) == 304
    assert _wsgi(one.gateway, new.token, 2)[0] == "304 Not Modified"
    assert _wsgi(one.gateway, new.token, 1) == ("django", None)
