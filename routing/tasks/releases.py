"""Release tasks: the periodic tick and a per-release step (enqueued on commit after an approval or
a resume, so a release does not wait for the next tick). Both are idempotent: steps claim the
release row (SKIP LOCKED plus a conditional update), so a redelivered task (acks_late) is harmless.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from routing.releases import rollout


@shared_task(name="routing.tasks.releases.release_tick")
def release_tick() -> dict[str, Any]:
    report = rollout.release_tick(now=timezone.now())
    return {
        "stepped": {str(k): v for k, v in report["stepped"].items()},
        "rollbacks_acknowledged": report["rollbacks_acknowledged"],
    }


@shared_task(name="routing.tasks.releases.release_step_task")
def release_step_task(release_id: int) -> str:
    return rollout.release_step(release_id=int(release_id), now=timezone.now())
