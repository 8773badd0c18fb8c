"""Bulk writes for telemetry, the same on PostgreSQL and SQLite except where speed needs COPY.

- `copy_insert`: PostgreSQL COPY (hundreds of thousands of rows/s); batched multi-row INSERT on
  SQLite (the embedded mode).
- `upsert`: batched multi-row `INSERT ... ON CONFLICT (key) DO UPDATE SET col = excluded.col`,
  which both PostgreSQL and SQLite (>= 3.24) understand.
- `lock_source_statement`: a transaction-scoped advisory lock per source on PostgreSQL, so two
  ingests from one source never interleave their delete-then-insert; SQLite serialises writers.
- `run_statements`: several statements in one round trip on PostgreSQL (`run_statements_fetch_last`
  also returns the rows of the last one, `run_statements_fetch_each` those of each).
- `copy_text`: PostgreSQL COPY of rows the caller already rendered in COPY's text format (one write
  instead of one call per row: the push path's largest per-sample cost), `copy_field` escapes a value.

Table and column names come from our models, never from input; values are always parameters.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

from django.db import connection

# SQLite allows 32766 bound variables per statement (3.32+); PostgreSQL 65535.
MAX_VARIABLES = 30_000

Statement = tuple[str, list[Any]]


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def copy_insert(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Insert rows (no conflict handling: the caller deleted what they replace)."""
    if not rows:
        return 0
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        if is_postgres():
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            with raw.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return len(rows)
        per_statement = max(1, MAX_VARIABLES // len(columns))
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [value for row in chunk for value in row]
            cursor.execute(
                f"INSERT INTO {table} ({cols}) VALUES " + ", ".join([placeholder] * len(chunk)), params
            )
    return len(rows)


def copy_field(text: str) -> str:
    """A text value in COPY's text format: backslash, tab, newline and carriage return escaped."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def copy_text(table: str, columns: Sequence[str], data: str) -> None:
    """PostgreSQL only: COPY rows given in the text format (tab-separated fields, one row per line,
    fields escaped with `copy_field`, floats as `repr`). No conflict handling, as `copy_insert`."""
    if not data:
        return
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            copy.write(data)


def upsert(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    update: dict[str, str] | None = None,
) -> int:
    """Insert or replace rows by `key` (see `upsert_statements`)."""
    run_statements(upsert_statements(table, columns, key, rows, update=update))
    return len(rows)


def upsert_statements(
    table: str,
    columns: Sequence[str],
    key: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    update: dict[str, str] | None = None,
    array_types: Sequence[str] | None = None,
) -> list[Statement]:
    """Batched `INSERT ... ON CONFLICT (key) DO UPDATE` statements. `update` maps a column to an SQL
    expression over `excluded` and `{table}` (default: take the new value); `{least}`/`{greatest}`
    are the two-argument minimum/maximum, spelled differently by PostgreSQL and SQLite.

    With `array_types` (the columns' SQL types), PostgreSQL gets one statement with one array
    parameter per column (`SELECT * FROM unnest(...)`) instead of one placeholder per value: its text
    stays the same whatever the row count, so psycopg's client-side binding reuses its parsed form
    (it re-parses any statement with more than 50 parameters, ~0.5 ms for a push batch's upserts)."""
    if not rows:
        return []
    least, greatest = ("LEAST", "GREATEST") if is_postgres() else ("MIN", "MAX")
    assignments = []
    for column in columns:
        if column in key:
            continue
        expression = (update or {}).get(column, f"excluded.{column}")
        assignments.append(f"{column} = " + expression.format(least=least, greatest=greatest, table=table))
    conflict = f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {', '.join(assignments)}"
    if array_types is not None and is_postgres():
        arrays = ", ".join(f"%s::{sql_type}[]" for sql_type in array_types)
        return [
            (
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {conflict}",
                [array_literal(column) for column in zip(*rows, strict=True)],
            )
        ]
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, MAX_VARIABLES // len(columns))
    statements: list[Statement] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        statements.append(
            (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([placeholder] * len(chunk))} {conflict}",
                [value for row in chunk for value in row],
            )
        )
    return statements


def array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal (`{1,2,"a\\"b"}`) of ints, floats, bools or strings, passed as one
    text parameter and cast by the statement: cheaper to build than psycopg's list adaptation."""
    items = []
    for value in values:
        if isinstance(value, bool):
            items.append("t" if value else "f")
        elif isinstance(value, int | float):
            items.append(repr(value))
        elif isinstance(value, str):
            items.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        else:
            raise TypeError(f"no array literal for {type(value).__name__}")
    return "{" + ",".join(items) + "}"


def run_statements(statements: Sequence[Statement]) -> None:
    """Run statements in order. On PostgreSQL with client-side binding (Django's default psycopg
    cursor) they go in one round trip; a round trip costs as much as a small statement, and the
    ingest path runs several per batch."""
    if not statements:
        return
    with connection.cursor() as cursor:
        if is_postgres() and len(statements) > 1 and _client_side_binding(cursor):
            cursor.execute(
                ";\n".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
            )
            return
        for sql, params in statements:
            cursor.execute(sql, params)


def run_statements_fetch_last(statements: Sequence[Statement]) -> list[tuple[Any, ...]]:
    """Run statements in order (one round trip where `run_statements` manages it) and return the
    rows of the last one, which must return rows."""
    with connection.cursor() as cursor:
        if is_postgres() and len(statements) > 1 and _client_side_binding(cursor):
            cursor.execute(
                ";\n".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
            )
            raw = cursor.cursor
            while raw.nextset():  # the rows of the last statement
                pass
            return raw.fetchall()
        for sql, params in statements:
            cursor.execute(sql, params)
        return cursor.fetchall()


def run_statements_fetch_each(statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """Run statements in order (one round trip where `run_statements` manages it) and return the
    rows of each ([] for a statement that returns none)."""
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        if is_postgres() and len(statements) > 1 and _client_side_binding(cursor):
            cursor.execute(
                ";\n".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
            )
            raw = cursor.cursor
            while True:
                results.append(raw.fetchall() if raw.description is not None else [])
                if not raw.nextset():
                    return results
        for sql, params in statements:
            cursor.execute(sql, params)
            results.append(cursor.fetchall() if cursor.description is not None else [])
    return results


def _client_side_binding(cursor: Any) -> bool:
    import psycopg

    return isinstance(cursor.cursor, psycopg.ClientCursor)


def lock_source_statement(source: str) -> list[Statement]:
    """Serialise writers of one source until the transaction ends (PostgreSQL; SQLite serialises
    every writer already). crc32 is a stable key; the first key separates us from other locks."""
    if not is_postgres():
        return []
    return [("SELECT pg_advisory_xact_lock(%s, %s)", [7301, zlib.crc32(source.encode()) - 2**31])]


def delete_source_minutes_statements(table: str, source: str, minutes: Sequence[int]) -> list[Statement]:
    """Delete what one source said about some minutes (before re-inserting them)."""
    return [
        (
            f"DELETE FROM {table} WHERE minute IN ({', '.join(['%s'] * len(chunk))}) AND source = %s",
            [*chunk, source],
        )
        for chunk in (list(minutes[i : i + MAX_VARIABLES]) for i in range(0, len(minutes), MAX_VARIABLES))
    ]


def delete_older(table: str, column: str, cutoff: int) -> int:
    """Retention: delete rows whose time column is before `cutoff`. Returns the rows deleted."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} < %s", [cutoff])
        return max(cursor.rowcount, 0)


def insert_statements(
    table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, array_types: Sequence[str]
) -> list[Statement]:
    """Plain batched INSERTs (no conflict handling): one `unnest` of arrays on PostgreSQL (constant
    statement text, see `upsert_statements`), multi-row VALUES on SQLite."""
    if not rows:
        return []
    cols = ", ".join(columns)
    if is_postgres():
        arrays = ", ".join(f"%s::{sql_type}[]" for sql_type in array_types)
        return [
            (
                f"INSERT INTO {table} ({cols}) SELECT * FROM unnest({arrays})",
                [array_literal(column) for column in zip(*rows, strict=True)],
            )
        ]
    placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, MAX_VARIABLES // len(columns))
    return [
        (
            f"INSERT INTO {table} ({cols}) VALUES {', '.join([placeholder] * len(chunk))}",
            [value for row in chunk for value in row],
        )
        for chunk in (rows[i : i + per_statement] for i in range(0, len(rows), per_statement))
    ]
