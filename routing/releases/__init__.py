"""Releases: approval gates, staged rollout, canary analysis and automatic rollback."""
