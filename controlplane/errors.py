"""Domain errors raised by services and turned into HTTP answers at the edge."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DomainError(Exception):
    status = 400

    def __init__(self, message: str, *, problems: Iterable[Any] = (), extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.problems = [p if isinstance(p, dict) else p.as_dict() for p in problems]
        self.extra = extra or {}


class ValidationFailed(DomainError):
    """Input is invalid; `problems` lists each field path and reason. Nothing was stored."""

    status = 400


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """The write was based on stale state (e.g. an old parent version)."""

    status = 409


class IllegalTransition(Conflict):
    """A state machine refused the transition."""


class Forbidden(DomainError):
    """A business rule forbids this actor from doing this (e.g. approving one's own release)."""

    status = 403
