"""The config poll's 304 answered from Redis instead of PostgreSQL.

Every gateway polls its desired config every few seconds and nearly every answer is 304. The answer
depends on two columns of the gateway's row: its current token's hash and its desired revision.
This module keeps them in the Redis database of `CACHE_URL`, shared by every web process:

    fleetpoll:gen:<gateway id>   a random stamp, deleted whenever that gateway's desired revision or
                                 credentials change or the gateway is deleted;
    fleetpoll:row:<gateway id>   "<stamp> <current token sha256> <desired revision>".

A poll reads both keys in one MGET and trusts the row only when its stamp is the current one. A
poll that finds no valid row reads PostgreSQL as before and stores what it read under the stamp it
read (or created) *before* reading PostgreSQL, so a change that commits while a poll is in flight
deletes that stamp and the poll's row is never trusted. Invalidation (`invalidate`) deletes the
stamps twice: inside the writing transaction, so a Redis that cannot be reached makes a credential
change fail instead of leaving a revoked token answered from Redis, and again after the commit,
for a poll that read the old row in between. The next poll therefore sees any change at once.
Rows expire after `ROW_TTL_S` (the bound if the after-commit delete alone is lost).

What the cache does not change: every poll is authenticated (the token's hash is compared with the
cached one in constant time; anything but the current token of the gateway in the URL goes to the
database path: previous tokens in their rotation grace window, wrong tokens, other gateways' tokens),
and anything but a 304 is answered by the full stack.

Used only when `CACHE_URL` is a Redis URL (with the local-memory cache of the embedded mode each
process would hold its own copy, which invalidation could not reach) and `FLEET_POLL_CACHE` is on.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)

ROW_TTL_S = 300
# after a Redis error, polls use PostgreSQL alone for this long instead of waiting on Redis each time
RETRY_AFTER_S = 5.0

_lock = threading.Lock()
_client: Any = None
_client_url: str | None = None
_down_until = 0.0


def _redis() -> Any:
    """The Redis client of CACHE_URL, or None when the poll cache is off."""
    global _client, _client_url
    url = getattr(settings, "CACHE_URL", "") or ""
    if not getattr(settings, "FLEET_POLL_CACHE", True) or not url.startswith(("redis://", "rediss://")):
        return None
    if _client is None or _client_url != url:
        import redis

        with _lock:
            _client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
            _client_url = url
    return _client


def _keys(gateway_id: int) -> tuple[str, str]:
    # the database's name keeps control planes (and test databases) sharing one Redis apart
    prefix = f"fleetpoll:{connection.settings_dict['NAME']}:"
    return f"{prefix}gen:{gateway_id}", f"{prefix}row:{gateway_id}"


def lookup(gateway_id: int, *, create: bool = True) -> tuple[bytes | None, tuple[bytes, int] | None]:
    """(stamp, (token hash, desired revision) or None). The stamp is the one a database read made
    now may be stored under (`fill`); None when Redis is off or unreachable (or, with
    create=False, when the gateway has none yet)."""
    global _down_until
    client = _redis()
    if client is None or time.monotonic() < _down_until:
        return None, None
    import redis

    try:
        gen_key, row_key = _keys(gateway_id)
        stamp, row = client.mget(gen_key, row_key)
        if stamp is None:
            if not create:
                return None, None
            fresh = secrets.token_hex(8).encode()
            # NX: a concurrent poll's stamp wins; this poll then reads the database without storing
            created = client.set(gen_key, fresh, nx=True, ex=ROW_TTL_S * 2)
            return (fresh if created else None), None
    except redis.RedisError as exc:
        _down_until = time.monotonic() + RETRY_AFTER_S
        logger.warning("config poll cache unreachable (%s): polls read the database", exc.__class__.__name__)
        return None, None
    if row is not None:
        row_stamp, token_hash, revision = row.split(b" ")
        if row_stamp == stamp:
            return stamp, (token_hash, int(revision))
    return stamp, None


def fill(gateway_id: int, stamp: bytes | None, token_hash: str, revision: int) -> None:
    """Store what a poll read from the database under the stamp `lookup` gave before that read."""
    client = _redis()
    if client is None or stamp is None:
        return
    import redis

    try:
        client.set(_keys(gateway_id)[1], b"%s %s %d" % (stamp, token_hash.encode(), revision), ex=ROW_TTL_S)
    except redis.RedisError:
        pass  # the next poll reads the database again


def _delete(ids: list[int]) -> None:
    client = _redis()
    if client is None or not ids:
        return
    for start in range(0, len(ids), 1000):
        client.delete(*[key for i in ids[start : start + 1000] for key in _keys(i)])


def invalidate(gateway_ids: Iterable[int]) -> None:
    """Forget the cached poll answers of these gateways: now (a Redis error propagates, so the
    caller's transaction rolls back) and again after the transaction commits (an error is logged:
    rows then expire within ROW_TTL_S)."""
    ids = sorted({int(i) for i in gateway_ids})
    if not ids or _redis() is None:
        return
    _delete(ids)

    def again() -> None:
        import redis

        try:
            _delete(ids)
        except redis.RedisError as exc:
            logger.error(
                "config poll cache: invalidation after commit failed (%s); stale 304s possible for up to %d s",
                exc.__class__.__name__,
                ROW_TTL_S,
            )

    transaction.on_commit(again)


# The columns a cached poll answer depends on: a save touching any of them invalidates.
POLL_FIELDS = frozenset({"token_hash", "desired_revision"})


def on_gateway_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if kwargs.get("created") or kwargs.get("raw"):
        return  # nothing cached yet for a new gateway
    if update_fields is not None and not (POLL_FIELDS & set(update_fields)):
        return  # e.g. a heartbeat's bookkeeping
    invalidate([instance.pk])


def on_gateway_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    invalidate([instance.pk])
