"""Fixtures shared with the budget engine tests."""

from __future__ import annotations

from tests.slo.budget.conftest import receiver  # noqa: F401
