"""Default periodic tasks of this app (see controlplane/schedules.py).

Each entry: {"name": unique name, "task": dotted task name, "every_s": seconds,
"description": text, optional "kwargs_json": JSON object string}.
"""

from __future__ import annotations

from typing import Any

PERIODIC_TASKS: list[dict[str, Any]] = []
