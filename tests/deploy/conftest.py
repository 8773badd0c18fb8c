"""The release fixtures (a fleet with good telemetry, a release to roll out) for the alert-loop test."""

from tests.routing.releases.conftest import (  # noqa: F401 - fixtures, found by name
    documents,
    evaluate,
    fleet,
    healthy,
    make_release,
    policy_doc,
    push,
    rolling_edge_hotfix,
    slos,
)
