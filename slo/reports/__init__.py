"""Scheduled error-budget reports (issue 9): compute (pure), selectors, services, render."""
