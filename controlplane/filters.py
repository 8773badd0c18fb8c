"""Filters shared by the API's list endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError


class UtcIsoDateTimeField(forms.DateTimeField):
    """ISO 8601 with any offset a real zone uses, normalised to UTC before it reaches SQL.

    PostgreSQL refuses offsets beyond +-15:59 ("time zone displacement out of range") and
    Python refuses to shift datetimes past year 1 or 9999: both become a 400, not a 500.
    """

    input_formats = ["iso-8601"]

    def strptime(self, value: str, format: str) -> datetime:
        return datetime.fromisoformat(value)

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset.total_seconds()) > 14 * 3600:
            raise ValidationError("time zone offset must be between -14:00 and +14:00", code="invalid")
        try:
            return parsed.astimezone(UTC) if offset is not None else parsed
        except OverflowError:
            raise ValidationError("date out of range", code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.Filter):
    field_class = UtcIsoDateTimeField
