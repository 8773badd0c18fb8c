"""The PostgreSQL write of a validated push batch: every table in one round trip.

One simple-protocol query of three statements, which PostgreSQL runs as one implicit transaction
(all or nothing) when the connection is in autocommit mode, and inside the caller's transaction
otherwise:

1. the source's advisory lock (writers of one source never interleave);
2. the claim of the listed minutes (`slo.telemetry.stamps`; a minute whose stored write is newer
   stays as it is) with the delete of the claimed minutes' series, returning the claimed minutes;
3. every write, as data-modifying CTEs of one statement (each on its own table): the series rows
   (one array per column of the distinct series and one per column of the points, minute, series
   number and value, joined server side: a series' four text fields are sent once, not once per
   minute), then the SLI minutes, the feeds' spans, the pending hours and the budget sync's
   spans, as `slo.telemetry.storage.sli_rows_write` writes them.

The writes keep only the claimed minutes: after statement 2 those are exactly the listed minutes
whose stored stamp is this batch's (a minute left unclaimed has a newer stamp, and the advisory
lock keeps every other writer of this source out until the end). So a replayed older batch writes
nothing at all, not even a feed extension or a pending mark.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slo.models.telemetry import PushedMinute, SeriesMinute, SliFeed, SliHourPending, SliMinute, SliSpan
from slo.telemetry.batch_format import PushBatch, SeriesRef
from slo.telemetry.derive import SliRow
from slo.telemetry.spans import written_spans
from slo.telemetry.sql import Statement, array_literal, lock_source_statement, run_statements_fetch_each
from slo.telemetry.stamps import claim_statement

_SERIES = SeriesMinute._meta.db_table
_STAMPS = PushedMinute._meta.db_table
_SLI = SliMinute._meta.db_table
_FEED = SliFeed._meta.db_table
_PENDING = SliHourPending._meta.db_table
_SPAN = SliSpan._meta.db_table

# the listed minutes this batch holds after its claim (parameters: source, minutes, stamp); the
# writes read it as the CTE `claimed`
_CLAIMED = f"SELECT minute FROM {_STAMPS} WHERE source = %s AND minute = ANY(%s::bigint[]) AND stamp = %s"


def push_write(source: str, batch: PushBatch, stamp: int, rows: Sequence[SliRow], now: datetime) -> set[int]:
    """Store a batch (PostgreSQL): series, SLI minutes, feeds, pending hours and spans in one round
    trip. `rows` are the SLI minutes derived from the whole batch. Returns the claimed minutes."""
    lock = lock_source_statement(source)
    writes: list[Statement] = []
    if batch.points:
        writes.append(_series_statement(source, batch))
    if rows:
        writes += _sli_statements(source, rows, now)
    statements: list[Statement] = [*lock, claim_statement(source, batch.minutes, stamp, clear_table=_SERIES)]
    if writes:
        # one statement: the claimed minutes are read once, and every write is a data-modifying
        # CTE (each on its own table, so their order inside the statement does not matter)
        ctes = [f"claimed AS ({_CLAIMED})", *(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(writes))]
        params = [source, array_literal(batch.minutes), stamp, *(p for _, ps in writes for p in ps)]
        statements.append(("WITH " + ", ".join(ctes) + " SELECT count(*) FROM claimed", params))
    results = run_statements_fetch_each(statements)
    return {row[0] for row in results[len(lock)]}


def _series_statement(source: str, batch: PushBatch) -> Statement:
    points = batch.points
    # the distinct series, numbered from 1 in order of first appearance (refs hash by identity)
    number: dict[SeriesRef, str] = {}
    fields: list[tuple[str, str, str, str]] = []
    for ref in batch.series_refs():
        number[ref] = str(len(fields) + 1)
        quoted = ref.sql_fields
        if quoted is None:  # rendered once per series: validated series are cached across batches
            quoted = ref.sql_fields = (
                _quoted(ref.name),
                _quoted(ref.service),
                _quoted(ref.tier),
                _quoted(ref.stored_labels),
            )
        fields.append(quoted)
    minute_text = {minute: str(minute) for minute in batch.minutes}
    columns = ["{" + ",".join(column) + "}" for column in zip(*fields, strict=True)]
    return (
        f"INSERT INTO {_SERIES} (minute, source, name, service, tier, labels, value) "
        "SELECT p.minute, %s, s.name, s.service, s.tier, s.labels, p.value "
        "FROM unnest(%s::bigint[], %s::int[], %s::float8[]) AS p(minute, series, value) "
        "JOIN unnest(%s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY "
        "AS s(name, service, tier, labels, n) ON s.n = p.series "
        "WHERE p.minute IN (SELECT minute FROM claimed) ORDER BY p.minute, s.name, s.labels",
        [
            source,
            "{" + ",".join([minute_text[point[0]] for point in points]) + "}",
            "{" + ",".join([number[point[1]] for point in points]) + "}",
            # repr round-trips a double exactly; validated values are finite
            "{" + ",".join(map(repr, [point[2] for point in points])) + "}",
            *columns,
        ],
    )


def _quoted(text: str) -> str:
    """One element of a PostgreSQL text array literal (as `array_literal` writes it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _sli_statements(source: str, rows: Sequence[SliRow], now: datetime) -> list[Statement]:
    slo_ids = _ints([r.slo_id for r in rows])
    row_minutes = _ints([r.minute for r in rows])
    marked_at = now.timestamp()
    spans = written_spans(rows)
    rows_of = "unnest(%s::bigint[], %s::bigint[]) AS r(slo_id, minute)"
    return [
        (
            f"INSERT INTO {_SLI} (slo_id, minute, source, good, valid, present) "
            "SELECT r.slo_id, r.minute, %s, r.good, r.valid, r.present "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::boolean[]) "
            f"AS r(slo_id, minute, good, valid, present) WHERE r.minute IN (SELECT minute FROM claimed) "
            "ON CONFLICT (slo_id, minute, source) DO UPDATE SET good = excluded.good, "
            "valid = excluded.valid, present = excluded.present",
            [
                source,
                slo_ids,
                row_minutes,
                _ints([r.good for r in rows]),
                _ints([r.valid for r in rows]),
                array_literal([bool(r.present) for r in rows]),
            ],
        ),
        (
            f"INSERT INTO {_FEED} (slo_id, source, mode, first_minute, last_minute) "
            f"SELECT r.slo_id, %s, 'push', min(r.minute), max(r.minute) FROM {rows_of} "
            f"WHERE r.minute IN (SELECT minute FROM claimed) GROUP BY r.slo_id ORDER BY r.slo_id "
            "ON CONFLICT (slo_id, source) DO UPDATE SET mode = excluded.mode, "
            f"first_minute = LEAST({_FEED}.first_minute, excluded.first_minute), "
            f"last_minute = GREATEST({_FEED}.last_minute, excluded.last_minute)",
            [source, slo_ids, row_minutes],
        ),
        # DO UPDATE (not DO NOTHING): it locks an existing mark until we commit, so a rollup
        # running now skips it instead of deleting it without seeing our minutes. Sorted: two
        # sources marking the same hours take the row locks in one order (no deadlock).
        (
            f"INSERT INTO {_PENDING} (slo_id, hour, marked_at) "
            f"SELECT DISTINCT r.slo_id, r.minute / 60, %s::double precision FROM {rows_of} "
            f"WHERE r.minute IN (SELECT minute FROM claimed) ORDER BY 1, 2 "
            "ON CONFLICT (slo_id, hour) DO UPDATE SET marked_at = excluded.marked_at",
            [marked_at, slo_ids, row_minutes],
        ),
        # the budget sync's spans: a span holding no claimed minute is not recorded
        (
            f"INSERT INTO {_SPAN} (slo_id, first_minute, last_minute, marked_at) "
            "SELECT s.slo_id, s.lo, s.hi, %s::double precision "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS s(slo_id, lo, hi) "
            f"WHERE EXISTS (SELECT 1 FROM claimed AS c WHERE c.minute BETWEEN s.lo AND s.hi)",
            [
                marked_at,
                _ints([slo_id for slo_id, _, _ in spans]),
                _ints([lo for _, lo, _ in spans]),
                _ints([hi for _, _, hi in spans]),
            ],
        ),
    ]


def _ints(values: Sequence[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"
