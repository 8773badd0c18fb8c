"""Large id lists in ORM filters (the Django side of `controlplane.lib.pgarrays`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL

from controlplane.lib.pgarrays import int_array


def ids_in(ids: Sequence[int]) -> Any:
    """The right-hand side of `pk__in` for many ids: one array parameter on PostgreSQL (10,000
    placeholders cost Django and psycopg more than the query), the plain list elsewhere."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", [int_array(ids)])
    return list(ids)
