"""routing/fleet/decision_format.py: the decision-record batch format (pure)."""

from __future__ import annotations

from routing.fleet.decision_format import MAX_BATCH_RECORDS, parse_decision_batch

NOW = 1_800_000_000.0
OLDEST = NOW - 7 * 86_400


def _record(**overrides):
    record = {
        "request_id": "req-1",
        "at": "2027-01-15T08:00:00.250+00:00",
        "rule": "low-confidence-to-cloud",
        "admission": "admitted",
        "chain": ["local", "public_cloud"],
        "route": "public_cloud",
        "cache": [{"layer": "result", "result": "miss", "key": ["input_hash", "model_version"]}],
        "model_version": "v12",
        "revision": 4,
        "outcome": "ok",
        "latency_ms": 181.5,
    }
    record.update(overrides)
    return record


def _batch(*records, **extra):
    return {"contract_version": 1, "gateway": "edge-1", "records": list(records), **extra}


def _paths(problems):
    return {(p.path, p.message) for p in problems}


def test_it_accepts_a_whole_record():
    records, problems = parse_decision_batch(_batch(_record()), now_s=NOW, oldest_s=OLDEST)
    assert problems == []
    (record,) = records
    assert record.request_id == "req-1" and record.at == 1_800_000_000.25
    assert record.chain == ("local", "public_cloud") and record.route == "public_cloud"
    assert record.cache == ({"layer": "result", "result": "miss", "key": ["input_hash", "model_version"]},)
    assert (record.rule, record.model_version, record.revision, record.outcome) == (
        "low-confidence-to-cloud",
        "v12",
        4,
        "ok",
    )


def test_optional_fields_may_be_null_or_left_out():
    records, problems = parse_decision_batch(
        _batch(_record(rule=None, model_version=None, revision=None, cache=None, admission=None)),
        now_s=NOW,
        oldest_s=OLDEST,
    )
    assert problems == [] and records[0].rule is None and records[0].cache == ()


def test_every_problem_is_named_by_its_path_and_nothing_is_returned():
    records, problems = parse_decision_batch(
        _batch(
            _record(),
            _record(request_id="has space", outcome="maybe", latency_ms=-1, chain=[], extra=1),
            _record(request_id="req-3", at="2027-01-15T08:00:00", revision=True, cache=[{"layer": "result"}]),
            _record(request_id="req-1"),
            _record(request_id="req-5", at="2026-01-01T00:00:00Z"),
            {"request_id": "req-6"},
        ),
        now_s=NOW,
        oldest_s=OLDEST,
    )
    assert records is None
    assert _paths(problems) == {
        ("records[1].extra", "unknown field"),
        ("records[1].request_id", "1 to 64 characters of letters, digits and ._:-"),
        ("records[1].outcome", "one of ok, error, timeout, shed"),
        ("records[1].latency_ms", "a number from 0 to 3600000"),
        ("records[1].chain", "a list of 1 to 8 route names"),
        ("records[2].at", "an ISO 8601 time with a UTC offset"),
        ("records[2].revision", "a non-negative integer, or null"),
        ("records[2].cache[0].result", "required: a name of at most 64 characters"),
        ("records[3].request_id", "repeated in this batch"),
        ("records[4].at", "older than the retention: not stored"),
        ("records[5].at", "required"),
        ("records[5].chain", "required"),
        ("records[5].route", "required"),
        ("records[5].outcome", "required"),
        ("records[5].latency_ms", "required"),
    }


def test_a_record_from_the_future_is_refused():
    _, problems = parse_decision_batch(_batch(_record(at="2027-01-15T08:05:00Z")), now_s=NOW, oldest_s=OLDEST)
    assert _paths(problems) == {("records[0].at", "ahead of the server's clock by more than 120 s")}


def test_the_batch_is_bounded_and_versioned():
    _, problems = parse_decision_batch(
        _batch(*[_record(request_id=f"r{i}") for i in range(MAX_BATCH_RECORDS + 1)], contract_version=9, x=1),
        now_s=NOW,
        oldest_s=OLDEST,
    )
    assert _paths(problems) == {
        ("x", "unknown field"),
        ("contract_version", "must be 1"),
        ("records", f"at most {MAX_BATCH_RECORDS} records per batch; send several"),
    }
    _, problems = parse_decision_batch(_batch(), now_s=NOW, oldest_s=OLDEST)
    assert _paths(problems) == {("records", "a non-empty list")}
    _, problems = parse_decision_batch([], now_s=NOW, oldest_s=OLDEST)
    assert _paths(problems) == {("", "the body must be a JSON object")}


def test_problems_are_capped():
    _, problems = parse_decision_batch(
        _batch(*[_record(request_id=f"r{i}", outcome="?") for i in range(200)]), now_s=NOW, oldest_s=OLDEST
    )
    assert len(problems) == 51 and problems[-1].path == "records"
