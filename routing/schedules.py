"""Default periodic tasks of this app (see controlplane/schedules.py).

Each entry: {"name": unique name, "task": dotted task name, "every_s": seconds,
"description": text, optional "kwargs_json": JSON object string}.
"""

from __future__ import annotations

from typing import Any

PERIODIC_TASKS: list[dict[str, Any]] = []

# Fleet delivery: the outbox dispatcher catches pushes whose on-commit enqueue was lost
# (broker down) and retries due backoffs; reconcile re-sends drift found through heartbeats.
PERIODIC_TASKS.append(
    {
        "name": "routing: dispatch gateway deliveries",
        "task": "routing.tasks.delivery.dispatch_deliveries",
        "every_s": 10,
        "description": "Push due config deliveries to gateways (retries with backoff).",
    }
)
PERIODIC_TASKS.append(
    {
        "name": "routing: reconcile gateway fleet",
        "task": "routing.tasks.delivery.reconcile_fleet",
        "every_s": 30,
        "description": "Re-deliver desired revisions to drifted gateways (never a NACKed revision).",
    }
)

# Releases: advance waves, run canary analysis, roll back on triggers, confirm rollbacks.
PERIODIC_TASKS.append(
    {
        "name": "routing: advance releases",
        "task": "routing.tasks.releases.release_tick",
        "every_s": 30,
        "description": "Advance rolling-out releases (ACKs, bake, canary analysis, burn triggers, rollbacks).",
    }
)

# Model-version skew: gateways of one service running different model versions.
PERIODIC_TASKS.append(
    {
        "name": "routing: model version skew",
        "task": "routing.tasks.delivery.model_skew",
        "every_s": 300,
        "description": "Alert when a service's gateways (edge and cloud) run different model versions.",
    }
)

# Cache alerts (issues 4 and 5): hit-rate drop and stale hits, with the thresholds of each service's
# cache config (slo owns the alerts; routing owns the documents). The name predates the move from
# slo, so deployments keep one entry (migration routing.0004 retargets it).
PERIODIC_TASKS.append(
    {
        "name": "budget: cache alerts",
        "task": "routing.tasks.delivery.cache_alerts",
        "every_s": 300,
        "description": "Hit-rate drop (last 15 min vs the day before) and stale-hit alerts per service, "
        "with the thresholds of its cache config.",
    }
)

# Per-request decision records: kept DECISION_RECORD_RETENTION_DAYS (docs/decisions.md).
PERIODIC_TASKS.append(
    {
        "name": "routing: decision record retention",
        "task": "routing.tasks.decisions.enforce_retention",
        "every_s": 3600,
        "description": "Delete per-request decision records past their retention.",
    }
)

# Capacity (docs/capacity.md): scaling recommendations and device-health alerts from heartbeats.
PERIODIC_TASKS.append(
    {
        "name": "routing: capacity recommendations",
        "task": "routing.tasks.capacity.evaluate_capacity",
        "every_s": 60,
        "description": "Evaluate every device pool's autoscaling rules from gateway health; open and "
        "clear scaling recommendations (with hysteresis) and device-health alerts.",
    }
)
PERIODIC_TASKS.append(
    {
        "name": "routing: gateway health retention",
        "task": "routing.tasks.capacity.health_retention",
        "every_s": 3600,
        "description": "Delete gateway health samples past CAPACITY_HEALTH_RETENTION_DAYS.",
    }
)
PERIODIC_TASKS.append(
    {
        "name": "routing: budget responses",
        "task": "routing.tasks.capacity.budget_responses",
        "every_s": 300,
        "description": "While a page-level burn-rate alert fires, propose moving traffic to the safer "
        "chain (a draft policy version with its simulation) for an approver.",
    }
)
