"""Scheduled error-budget reports: compute (pure), selectors, services, render."""
