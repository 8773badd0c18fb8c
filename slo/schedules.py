"""Default periodic tasks of this app (see controlplane/schedules.py).

Each entry: {"name": unique name, "task": dotted task name, "every_s": seconds,
"description": text, optional "kwargs_json": JSON object string}.
"""

from __future__ import annotations

from typing import Any

PERIODIC_TASKS: list[dict[str, Any]] = []

# Telemetry: pull every Prometheus source each minute; enforce retention hourly.
PERIODIC_TASKS.append(
    {
        "name": "slo: pull telemetry sources",
        "task": "slo.tasks.telemetry.pull_sources",
        "every_s": 60,
        "description": "Fan out one pull task per enabled Prometheus telemetry source.",
    }
)
PERIODIC_TASKS.append(
    {
        "name": "slo: telemetry retention",
        "task": "slo.tasks.telemetry.enforce_retention",
        "every_s": 3600,
        "description": "Drop minute partitions and delete hourly rollups past their retention.",
    }
)
PERIODIC_TASKS.append(
    {
        "name": "slo: telemetry partitions ahead",
        "task": "slo.tasks.telemetry.ensure_partitions",
        "every_s": 3600,
        "description": "Create the day partitions of the minute tables for the coming days (PostgreSQL).",
    }
)

# Budget engine (slo/tasks/budget.py).
PERIODIC_TASKS += [
    {
        "name": "budget: evaluate every SLO",
        "task": "slo.budget.evaluate_all",
        # asks every 10 s; the task starts each minute's cycle once, BUDGET_EVALUATION_GRACE_S after it
        "every_s": 10,
        "description": "Each minute, BUDGET_EVALUATION_GRACE_S after it ends: sync the minutes written, then "
        "fan out SLO evaluation in chunks; each chunk claims its SLOs per instant.",
    },
    {
        "name": "budget: evaluate composite SLOs",
        "task": "slo.composites.evaluate_all",
        "every_s": 60,
        "description": "Composite SLOs from their members' budget buckets; pages through the alert outbox.",
    },
    {
        "name": "budget: send due notifications",
        "task": "slo.budget.notifications_sweep",
        "every_s": 30,
        "description": "Retries and notifications whose enqueue was lost.",
    },
    {
        "name": "budget: remind still-firing alerts",
        "task": "slo.budget.renotify",
        "every_s": 60,
        "description": "Per channel renotify_interval_s.",
    },
    {
        "name": "budget: re-post alerts to Alertmanager",
        "task": "slo.budget.alertmanager_repost",
        "every_s": 60,
        "description": "Firing alerts with endsAt 4 minutes ahead (resolved ones for 15 minutes), as Prometheus does.",
    },
    {
        "name": "budget: thin status history",
        "task": "slo.budget.history_prune",
        "every_s": 3600,
        "description": "Status history: 5-minute points for 8 days, hourly for 400; bucket retention.",
    },
]
PERIODIC_TASKS.append(
    {
        "name": "slo: telemetry hourly rollups",
        "task": "slo.tasks.telemetry.rollup_hours",
        "every_s": 60,
        "description": "Recompute hourly SLI rollups of hours touched by ingests (sweep; ingests also enqueue it).",
    }
)
PERIODIC_TASKS += [
    {
        "name": "budget: sync recent telemetry minutes",
        "task": "slo.budget.sync",
        "every_s": 60,
        "description": "Copy the SLI minutes ingests wrote (any age: late pushes, backfills) into budget buckets.",
    },
    {
        "name": "budget: hourly cost rollups",
        "task": "slo.budget.cost_rollups",
        "every_s": 3600,
        "kwargs_json": '{"resolution": "hour"}',
        "description": "Cost per request, per hit and savings of the last complete hour.",
    },
    {
        "name": "budget: daily cost rollups",
        "task": "slo.budget.cost_rollups",
        "every_s": 86400,
        "kwargs_json": '{"resolution": "day"}',
        "description": "Cost figures of the last complete UTC day.",
    },
]

# Reports: each ReportSchedule owns its own crontab entry (created with the schedule);
# this sweep only retries report emails and resends ones whose enqueue was lost.
PERIODIC_TASKS.append(
    {
        "name": "reports: send due report emails",
        "task": "slo.reports.send_due",
        "every_s": 300,
        "description": "Retry failed report emails and send deliveries whose task was lost.",
    }
)
