"""The request-context push format (slo/telemetry/contexts.py): pure checks, no database."""

from __future__ import annotations

from datetime import UTC, datetime

from slo.telemetry.contexts import CONTEXT_FIELDS, MAX_CONTEXTS_PER_MINUTE, parse_context_batch

NOW = datetime(2026, 3, 11, 10, 0, 30, tzinfo=UTC).timestamp()
CONTEXT = {
    "confidence": 0.42,
    "priority": "high",
    "network_quality": "good",
    "privacy": False,
    "region": "eu-west",
    "queue_depth": 3,
    "active_workers": 2,
    "unhealthy_regions": ["eu-central"],
    "region_rtt_ms": {"eu-west": 4},
}


def batch(*minutes: dict) -> dict:
    return {"contract_version": 1, "gateway": "edge-1", "minutes": list(minutes)}


def test_every_field_a_policy_reads_can_be_reported() -> None:
    from routing.policy.conditions import CONTEXT_DEFAULTS, NUMERIC_FIELDS, SET_CONDITIONS

    # conditions, the queue ratio's parts, admission control and region choice (routing/policy/engine.py)
    read = {
        *NUMERIC_FIELDS,
        *SET_CONDITIONS.values(),
        *CONTEXT_DEFAULTS,
        "queue_depth",
        "active_workers",
        "observed_rps",
        "load_pct",
        "unhealthy_regions",
        "region_rtt_ms",
        "model",
    }
    assert read <= CONTEXT_FIELDS


def test_a_valid_batch_keeps_the_known_fields_and_names_the_dropped_ones() -> None:
    parsed, problems = parse_context_batch(
        batch(
            {
                "minute": "2026-03-11T09:59:00Z",
                "requests": 1200,
                "contexts": [{**CONTEXT, "user_id": "u-17"}],
            },
            # the minute in progress may be sent (a later, fuller sample replaces it)
            {
                "minute": "2026-03-11T10:00:00Z",
                "requests": 3,
                "contexts": [{"confidence": 0.9, "rtt_ms": None}],
            },
        ),
        now_s=NOW,
    )
    assert problems == []
    assert [(m.minute, m.requests) for m in parsed.minutes] == [(29553719, 1200), (29553720, 3)]
    assert parsed.minutes[0].contexts == [CONTEXT]  # user_id is no policy field: not stored
    assert parsed.minutes[1].contexts == [{"confidence": 0.9}]
    assert parsed.dropped_fields == ["user_id"]


def test_a_bad_batch_is_refused_whole_with_every_path() -> None:
    parsed, problems = parse_context_batch(
        {
            "contract_version": 2,
            "minutes": [
                {"minute": "2026-03-11T09:58:00Z", "requests": 5, "contexts": [{"confidence": 0.5}]},  # fine
                {"minute": "2026-03-11T09:58:30Z", "requests": 1, "contexts": []},
                {"minute": "2026-03-11T10:10:00Z", "requests": 1, "contexts": []},
                {
                    "minute": "2026-03-11T09:58:00Z",
                    "requests": True,
                    "contexts": [
                        {
                            "confidence": "high",
                            "privacy": "yes",
                            "queue_depth": float("nan"),
                            "unhealthy_regions": "eu",
                        }
                    ],
                },
                {"minute": "2026-03-11T09:57:00Z", "requests": 0, "contexts": [{}]},
                {
                    "minute": "2026-03-11T09:56:00Z",
                    "requests": 500,
                    "contexts": [{}] * (MAX_CONTEXTS_PER_MINUTE + 1),
                },
            ],
            "extra": 1,
        },
        now_s=NOW,
    )
    assert parsed is None
    assert {(p.path, p.message) for p in problems} >= {
        ("extra", "unknown field"),
        ("contract_version", "must be 1"),
        ("minutes[1].minute", "an ISO 8601 UTC timestamp on a whole minute"),
        ("minutes[2].minute", "is in the future"),
        ("minutes[3].minute", "appears twice in the batch"),
        ("minutes[3].requests", "a non-negative integer"),
        ("minutes[3].contexts[0].confidence", "must be a finite number"),
        ("minutes[3].contexts[0].privacy", "must be true or false"),
        ("minutes[3].contexts[0].queue_depth", "must be a finite number"),
        ("minutes[3].contexts[0].unhealthy_regions", "must be a list of at most 64 strings"),
        ("minutes[4].requests", "smaller than the number of contexts sampled"),
        ("minutes[5].contexts", f"at most {MAX_CONTEXTS_PER_MINUTE} per minute"),
    }
    assert parse_context_batch([], now_s=NOW)[0] is None
    assert parse_context_batch(batch(), now_s=NOW)[1][0].path == "minutes"
    old, problems = parse_context_batch(
        batch({"minute": "2026-03-11T09:00:00Z", "requests": 0, "contexts": []}),
        now_s=NOW,
        oldest_minute=29553719,
    )
    assert old is None and problems[0].message == "is older than the retention"
