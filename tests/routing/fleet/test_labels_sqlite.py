"""Label selectors on the embedded SQLite default, which has no JSON containment: a release target
and the fleet filter `?label=` match the same gateways as jsonb containment does on PostgreSQL. The
demo start (`run.sh`) releases to `target.labels: {demo: "true"}` on SQLite, and failed there before."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.fleet import services
from routing.fleet.selectors import with_labels
from routing.models.fleet import Gateway
from tests.support.embedded_sqlite import run_on_sqlite

GATEWAYS = [
    ("edge-a", {"demo": "true", "pool": "north"}),
    ("edge-b", {"demo": "true"}),
    ("edge-c", {"demo": "false", "pool": "north"}),
    ("edge-d", {}),
]
SELECTORS = [{"demo": "true"}, {"demo": "true", "pool": "north"}, {"pool": "north"}, {"demo": "no"}, {}]

SCRIPT = r"""
from routing.fleet import services
from routing.fleet.selectors import with_labels
from routing.models.fleet import Gateway
for name, labels in %(gateways)r:
    services.gateway_register(actor=None, data={
        "name": name, "service": "shelf-vision", "tier": "edge", "region": "eu", "labels": labels})
print(json.dumps([sorted(g.name for g in with_labels(Gateway.objects.all(), s)) for s in %(selectors)r]))
"""


def _expected() -> list[list[str]]:
    return [
        sorted(name for name, labels in GATEWAYS if all(labels.get(k) == v for k, v in wanted.items()))
        for wanted in SELECTORS
    ]


@pytest.mark.django_db
def test_postgresql_containment_matches_the_plain_definition(service: object) -> None:
    for name, labels in GATEWAYS:
        services.gateway_register(
            actor=None,
            data={"name": name, "service": "shelf-vision", "tier": "edge", "region": "eu", "labels": labels},
        )
    got = [sorted(g.name for g in with_labels(Gateway.objects.all(), s)) for s in SELECTORS]
    assert got == _expected()
    assert got[0] == ["edge-a", "edge-b"]


@pytest.mark.slow
def test_sqlite_matches_the_same_gateways(tmp_path: Path) -> None:
    result = run_on_sqlite(tmp_path, SCRIPT % {"gateways": GATEWAYS, "selectors": SELECTORS})
    assert result == _expected()
