"""Status corrections (maintenance windows), pure: the document, its validation and its minutes.

A correction excludes minutes from the budget of the SLOs in its scope: an excluded minute counts
as neither good nor bad (its budget units are zero, like a minute without traffic), so SLIs,
budgets, burn rates and alerts all leave it out. Its minutes are:

- one-off: `[start, end)`;
- recurring: one occurrence per instance of `recurrence.rrule` (RFC 5545, read by
  python-dateutil) counted from `start`'s wall-clock time in `recurrence.timezone`; an occurrence
  covers the wall-clock span `[instance, instance + duration_minutes)` in that zone, each end
  converted to UTC with the zone's offset on that date. So "Sundays 02:00-04:00 in Europe/Berlin"
  is two hours of real time most Sundays, one hour on the spring-forward Sunday (02:00-03:00 does
  not exist) and three on the fall-back Sunday (02:00-03:00 happens twice). A wall-clock time
  that does not exist or happens twice is read with `fold=0` (the offset in force before the
  change). `end`, when set, is the last moment an occurrence may start.

Times are whole minutes; a minute `m` (its start, UTC) is excluded when `start <= m < end` of an
occurrence. Scope: a list of SLOs (`service/name`), or a service, a tier, or a service on one tier.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slo.spec import NAME_RE, Problem, Tier, problems_from_validation_error

MINUTE = timedelta(minutes=1)
# An occurrence longer than a week would overlap the next weekly one; longer spans are one-off.
MAX_DURATION_MINUTES = 7 * 1440
# Rules finer than hourly are refused: they are not maintenance windows and would expand to
# tens of thousands of occurrences a month.
ALLOWED_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
SLO_REF_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CorrectionScope(_Strict):
    """Which SLOs: `slos` (a list of `service/name`), or `service` and/or `tier`."""

    slos: Annotated[list[Annotated[str, Field(pattern=SLO_REF_RE)]], Field(max_length=500)] = Field(
        default_factory=list
    )
    service: Annotated[str, Field(pattern=NAME_RE)] | None = None
    tier: Tier | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> CorrectionScope:
        if self.slos and (self.service or self.tier):
            raise ValueError("give either slos, or service and/or tier, not both")
        if not self.slos and not self.service and not self.tier:
            raise ValueError("give slos, a service or a tier")
        return self

    def applies_to(self, *, service: str, name: str, tier: str | None) -> bool:
        if self.slos:
            return f"{service}/{name}" in self.slos
        if self.service and self.service != service:
            return False
        return not (self.tier and self.tier != (tier or None))


class Recurrence(_Strict):
    rrule: Annotated[str, Field(min_length=1, max_length=500)]
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_DURATION_MINUTES)]

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return value

    @field_validator("rrule")
    @classmethod
    def _rule(cls, value: str) -> str:
        body = value.removeprefix("RRULE:")
        parts = {}
        for part in body.split(";"):
            key, _, val = part.partition("=")
            parts[key.strip().upper()] = val.strip().upper()
        if "DTSTART" in parts or "UNTIL" in parts:
            raise ValueError("no DTSTART or UNTIL in the rule: use the correction's start and end")
        if parts.get("FREQ") not in ALLOWED_FREQS:
            raise ValueError(f"FREQ must be one of {', '.join(ALLOWED_FREQS)}")
        if "BYSECOND" in parts:
            raise ValueError("BYSECOND is not allowed: occurrences start on whole minutes")
        try:
            rrulestr(body, dtstart=datetime(2026, 1, 1))
        except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
            raise ValueError(f"not a valid RRULE: {exc}") from None
        return body


class CorrectionSpec(_Strict):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    scope: CorrectionScope
    start: datetime
    end: datetime | None = None
    recurrence: Recurrence | None = None

    @field_validator("start", "end")
    @classmethod
    def _aware_whole_minute(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-11-01T02:00:00Z")
        if value.second or value.microsecond:
            raise ValueError("must be a whole minute")
        return value.astimezone(UTC)

    def range_problems(self) -> list[Problem]:
        if self.recurrence is None and self.end is None:
            return [Problem("end", "a one-off correction needs an end")]
        if self.end is not None and self.end <= self.start:
            return [Problem("end", "must be after start")]
        return []

    def occurrences(self, lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The correction's intervals `[start, end)` (UTC) that overlap `[lo, hi)`, in order."""
        if self.recurrence is None:
            assert self.end is not None
            if self.start < hi and self.end > lo:
                yield self.start, self.end
            return
        rec = self.recurrence
        zone = ZoneInfo(rec.timezone)
        duration = timedelta(minutes=rec.duration_minutes)
        local_start = self.start.astimezone(zone).replace(tzinfo=None)
        rule: rrule = rrulestr(rec.rrule, dtstart=local_start)  # type: ignore[assignment]
        # Local bounds with a day of slack either side for any UTC offset and DST change.
        lo_local = max(lo, self.start).astimezone(zone).replace(tzinfo=None) - duration - timedelta(days=1)
        last = hi if self.end is None else min(hi, self.end + MINUTE)
        hi_local = last.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
        for instance in rule.xafter(lo_local, inc=True):
            if instance > hi_local:
                break
            begin = _to_utc(instance, zone)
            if begin < self.start or (self.end is not None and begin > self.end):
                continue
            finish = _to_utc(instance + duration, zone)
            if finish <= begin:
                continue
            if begin < hi and finish > lo:
                yield begin, finish

    def bounds(self) -> tuple[datetime, datetime | None]:
        """The earliest excluded moment and the latest end (None: open-ended recurrence)."""
        if self.recurrence is None:
            return self.start, self.end
        if self.end is None:
            return self.start, None
        # The last occurrence starts at or before `end` and lasts at most the duration (+ a DST hour).
        return self.start, self.end + timedelta(minutes=self.recurrence.duration_minutes) + timedelta(hours=3)

    def excluded_minutes(self, lo: datetime, hi: datetime) -> list[tuple[int, int]]:
        """Epoch-minute ranges `[first, stop)` excluded within `[lo, hi)`, merged."""
        lo_m, hi_m = _epoch_minute_ceil(lo), _epoch_minute_ceil(hi)
        out: list[tuple[int, int]] = []
        for begin, finish in self.occurrences(lo, hi):
            a, b = max(_epoch_minute_ceil(begin), lo_m), min(_epoch_minute_ceil(finish), hi_m)
            if a < b:
                out.append((a, b))
        return merge_ranges(out)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _epoch_minute_ceil(moment: datetime) -> int:
    """The first whole minute at or after `moment` (epoch minutes)."""
    seconds = moment.timestamp()
    return int(-(-seconds // 60))


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, overlapping or touching `[lo, hi)` ranges merged."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def parse_correction_spec(data: Any) -> tuple[CorrectionSpec | None, list[Problem]]:
    """Validate a plain dict as a correction: (spec, []) or (None, problems with field paths)."""
    if not isinstance(data, dict):
        return None, [Problem("spec", "must be an object")]
    try:
        spec = CorrectionSpec.model_validate(data)
    except ValidationError as exc:
        return None, problems_from_validation_error(exc)
    problems = spec.range_problems()
    return (None, problems) if problems else (spec, [])


def spec_document(spec: CorrectionSpec) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_none=True)
