"""Helpers of the live schema run: the served OpenAPI schema with links between operations, data
for every collection so ids resolve, and a tally of what was sent and what came back."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Path parameters that name an existing object, and the field of a created object that fills them.
ID_PARAMETERS = {"id": "id", "slo_id": "id", "name": "name", "service": "name", "version": "version"}


def spec() -> dict[str, Any]:
    """The schema exactly as /api/v1/schema/ serves it."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def add_links(document: dict[str, Any]) -> int:
    """OpenAPI links from each create (POST on a collection, 201) to every operation under the
    created object's path, so stateful runs act on objects that exist instead of guessing ids.
    Returns how many links were added."""
    paths = document["paths"]
    added = 0
    for collection, operations in paths.items():
        create = operations.get("post")
        if not create or "201" not in create.get("responses", {}) or "{" in collection:
            continue
        links = create["responses"]["201"].setdefault("links", {})
        for path, targets in paths.items():
            match = re.match(re.escape(collection) + r"\{(\w+)\}/", path)
            if not match or match.group(1) not in ("id", "name"):
                continue
            parameter = match.group(1)
            for method, operation in targets.items():
                if method not in ("get", "put", "patch", "post", "delete") or "operationId" not in operation:
                    continue
                name = f"{operation['operationId']}_from_{create['operationId']}"
                links[name] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: f"$response.body#/{ID_PARAMETERS[parameter]}"},
                }
                added += 1
    return added


@dataclass
class Tally:
    """Cases sent and answers received, by role; the 5xx and check failures found."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    check_failures: list[str] = field(default_factory=list)

    def record(self, role: str, label: str, status: int, failure: str | None) -> None:
        self.cases[role] += 1
        self.statuses[(role, f"{status // 100}xx")] += 1
        if status >= 500:
            self.server_errors.append(f"{role} {label}: {status}")
        elif failure:
            self.check_failures.append(f"{role} {label}: {failure}")
