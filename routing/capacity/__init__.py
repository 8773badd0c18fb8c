"""Capacity: scaling recommendations from live device telemetry (docs/capacity.md)."""
