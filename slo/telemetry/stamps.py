"""The newest write of a pushed minute wins: stamps per (source, minute).

Every push batch has a stamp: its `sent_at` (microseconds since the epoch), or the time the control
plane received it when the gateway sends none. Ingest claims each listed minute with an upsert that
only replaces a stamp not newer than its own (`ON CONFLICT ... DO UPDATE ... WHERE stored.stamp <=
excluded.stamp RETURNING minute`); the minutes it gets back are stored, the others are stale (a
replayed or delayed older batch) and left as they are. The claim runs in the ingest's transaction
and locks the stamp rows it writes, so two writers of one minute serialise on them and the newer
stamp wins whatever the commit order. Equal stamps replace: a retried batch stays idempotent.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

from slo.models.telemetry import PushedMinute
from slo.telemetry.batch_format import PushBatch
from slo.telemetry.sql import Statement, array_literal, is_postgres

_STAMP_TABLE = PushedMinute._meta.db_table
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def batch_stamp(batch: PushBatch, received_at: datetime) -> int:
    """The stamp of a batch: its `sent_at`, or the time it was received (microseconds)."""
    if batch.sent_at_us is not None:
        return batch.sent_at_us
    return (received_at - _EPOCH) // timedelta(microseconds=1)


def claim_statement(
    source: str, minutes: Sequence[int], stamp: int, *, clear_table: str | None = None
) -> Statement:
    """Claim `minutes` of `source` for a write stamped `stamp`; the statement returns the minutes
    claimed (those whose stored stamp is not newer). On PostgreSQL, `clear_table` also deletes
    the claimed minutes of the source from that table in the same statement (data-modifying CTE)."""
    conflict = (
        f"ON CONFLICT (source, minute) DO UPDATE SET stamp = excluded.stamp "
        f"WHERE {_STAMP_TABLE}.stamp <= excluded.stamp RETURNING minute"
    )
    if is_postgres():
        claim = (
            f"INSERT INTO {_STAMP_TABLE} (source, minute, stamp) "
            f"SELECT %s, m, %s FROM unnest(%s::bigint[]) AS m {conflict}"
        )
        params: list[object] = [source, stamp, array_literal(list(minutes))]
        if clear_table is None:
            return claim, params
        return (
            # `minute = ANY(...)` too: a constant the planner prunes the table's partitions with
            f"WITH claimed AS ({claim}), cleared AS (DELETE FROM {clear_table} WHERE source = %s "
            "AND minute = ANY(%s::bigint[]) AND minute IN (SELECT minute FROM claimed)) "
            "SELECT minute FROM claimed",
            [*params, source, params[2]],
        )
    if clear_table is not None:
        raise ValueError("clear_table is for PostgreSQL; delete the claimed minutes after the claim")
    # SQLite: VALUES, not INSERT ... SELECT (its parser needs a WHERE there before ON CONFLICT)
    values = ", ".join(["(%s, %s, %s)"] * len(minutes))
    return (
        f"INSERT INTO {_STAMP_TABLE} (source, minute, stamp) VALUES {values} {conflict}",
        [value for minute in minutes for value in (source, minute, stamp)],
    )


def keep_minutes(batch: PushBatch, minutes: Collection[int]) -> PushBatch:
    """The part of a batch about `minutes` (the claimed ones)."""
    return PushBatch(
        minutes=[m for m in batch.minutes if m in minutes],
        points=[point for point in batch.points if point[0] in minutes],
        gateway=batch.gateway,
        sent_at_us=batch.sent_at_us,
    )
