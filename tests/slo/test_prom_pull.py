from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import requests

from slo.contract import REQUEST_DURATION, REQUESTS_TOTAL, SliQueries, selector, sli_queries
from slo.counters import MinuteCounts, from_epoch_minute
from slo.prom import PrometheusPuller, PrometheusQueryError, PrometheusUnavailable
from slo.spec import SloSpec
from tests.support import prometheus as support
from tests.support.prometheus import LoadedPrometheus, PrometheusServer, expected_sum

# fixtures from the support module (pytest finds fixtures among a test module's attributes)
prometheus_history = support.prometheus_history
prometheus_server = support.prometheus_server

BASE = {"service": "shelf-vision", "tier": "edge"}


def req(route: str, outcome: str) -> tuple[str, dict[str, str]]:
    return REQUESTS_TOTAL, {**BASE, "route": route, "outcome": outcome}


def bucket(route: str, le: str) -> tuple[str, dict[str, str]]:
    return f"{REQUEST_DURATION}_bucket", {**BASE, "route": route, "outcome": "ok", "le": le}


def count(route: str) -> tuple[str, dict[str, str]]:
    return f"{REQUEST_DURATION}_count", {**BASE, "route": route, "outcome": "ok"}


def window(loaded: LoadedPrometheus) -> tuple[datetime, datetime]:
    start = from_epoch_minute(loaded.history.start_s // 60)
    return start, start + timedelta(minutes=loaded.history.minutes)


def expected(loaded: LoadedPrometheus, series: list[tuple[str, dict[str, str]]]) -> MinuteCounts:
    values, present = expected_sum(loaded.history, series)
    return MinuteCounts(window(loaded)[0], values, present)


def assert_same(got: MinuteCounts, want: MinuteCounts) -> None:
    assert got.start_minute == want.start_minute
    missing_got = np.flatnonzero(~got.present).tolist()
    missing_want = np.flatnonzero(~want.present).tolist()
    assert missing_got == missing_want
    assert got.values[got.present].tolist() == want.values[want.present].tolist()


@pytest.mark.prometheus
def test_it_pulls_exact_counts_for_each_series(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    puller = PrometheusPuller(prometheus_server.url)
    start, end = window(prometheus_history)
    for route, outcome in (("local", "ok"), ("local", "error"), ("cache", "ok"), ("private_cloud", "ok")):
        got = puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE, route=route, outcome=outcome), start, end)
        assert_same(got, expected(prometheus_history, [req(route, outcome)]))


@pytest.mark.prometheus
def test_it_pulls_the_sum_across_a_reset_a_gap_and_a_new_series(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    puller = PrometheusPuller(prometheus_server.url)
    start, end = window(prometheus_history)
    got = puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE, outcome="~ok|error|timeout"), start, end)
    want = expected(
        prometheus_history,
        [req("local", "ok"), req("local", "error"), req("cache", "ok"), req("private_cloud", "ok")],
    )
    assert_same(got, want)
    minute = dict(got.items())
    # the reset minute (100) counts the restarted counter's value, exactly
    assert minute[start + timedelta(minutes=100)] is not None
    # gap minutes 150..154 and the minute after (no left edge) are missing, not zero
    for i in range(150, 156):
        assert minute[start + timedelta(minutes=i)] is None
    assert minute[start + timedelta(minutes=156)] is not None
    # the series born at minute 60 is counted from 0 (a witness series was flowing)
    assert minute[start + timedelta(minutes=60)] is not None
    # past the end of the history there is no data: missing, never 0
    after = puller.pull_minutes(selector(REQUESTS_TOTAL, **BASE), end, end + timedelta(minutes=30))
    assert not after.present.any()


@pytest.mark.prometheus
def test_a_latency_sli_matches_mixed_le_spellings(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    puller = PrometheusPuller(prometheus_server.url)
    start, end = window(prometheus_history)
    for threshold_ms, local_le, cache_le in ((150, "0.15", "0.150"), (2000, "2", "2.0")):
        spec = SloSpec.model_validate(
            {
                "name": "fast",
                "service": "shelf-vision",
                "tier": "edge",
                "objective": 99,
                "sli": {"kind": "latency", "threshold_ms": threshold_ms},
                "window": {"type": "rolling", "days": 28},
            }
        )
        good, valid = puller.pull_sli(sli_queries(spec), start, end)
        want_good = expected(prometheus_history, [bucket("local", local_le), bucket("cache", cache_le)])
        want_valid = expected(prometheus_history, [count("local"), count("cache")])
        assert_same(good, want_good)
        assert_same(valid, want_valid)
        assert (good.values <= valid.values).all()


@pytest.mark.prometheus
def test_a_bad_style_sli_derives_good_as_total_minus_bad(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    puller = PrometheusPuller(prometheus_server.url)
    start, end = window(prometheus_history)
    queries = SliQueries(
        good=None,
        bad=selector(REQUESTS_TOTAL, **BASE, route="local", outcome="error"),
        total=selector(REQUESTS_TOTAL, **BASE, route="local", outcome="~ok|error"),
    )
    good, valid = puller.pull_sli(queries, start, end)
    assert_same(good, expected(prometheus_history, [req("local", "ok")]))
    assert_same(valid, expected(prometheus_history, [req("local", "ok"), req("local", "error")]))


@pytest.mark.prometheus
def test_range_splitting_and_resuming_give_the_same_counts(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    sel = selector(REQUESTS_TOTAL, **BASE)
    start, end = window(prometheus_history)
    whole = PrometheusPuller(prometheus_server.url).pull_minutes(sel, start, end)
    split = PrometheusPuller(prometheus_server.url, max_points_per_request=7).pull_minutes(sel, start, end)
    assert whole.equals(split)
    puller = PrometheusPuller(prometheus_server.url)
    cuts = [start, start + timedelta(minutes=61), start + timedelta(minutes=152), end]
    resumed = puller.pull_minutes(sel, cuts[0], cuts[1])
    for a, b in zip(cuts[1:], cuts[2:], strict=False):
        resumed = resumed.concat(puller.pull_minutes(sel, a, b))
    assert whole.equals(resumed)


@pytest.mark.prometheus
def test_an_outage_raises_a_typed_error_and_recovery_gives_the_same_counts(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    sel = selector(REQUESTS_TOTAL, **BASE, outcome="ok")
    start, end = window(prometheus_history)
    sleeps: list[float] = []
    puller = PrometheusPuller(prometheus_server.url, max_retries=3, timeout_s=2, sleep=sleeps.append)
    before = puller.pull_minutes(sel, start, end)
    prometheus_server.stop()
    with pytest.raises(PrometheusUnavailable) as exc_info:
        puller.pull_minutes(sel, start, end)
    assert "connection failed" in exc_info.value.reason
    assert len(sleeps) == 3
    prometheus_server.start()
    assert puller.pull_minutes(sel, start, end).equals(before)


@pytest.mark.prometheus
def test_a_bad_query_is_not_retried(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    sleeps: list[float] = []
    puller = PrometheusPuller(prometheus_server.url, sleep=sleeps.append)
    start, _ = window(prometheus_history)
    # a regex our parser (Rust syntax) accepts and this Prometheus (Go RE2 before 1.22) refuses
    with pytest.raises(PrometheusQueryError, match="HTTP 400"):
        puller.pull_minutes('sum(rate(x{a=~"(?<n>a)"}[5m]))', start, start + timedelta(minutes=5))
    assert sleeps == []


@pytest.mark.prometheus
def test_the_queries_people_write_are_pulled_exactly_through_their_selector(
    prometheus_server: PrometheusServer, prometheus_history: LoadedPrometheus
) -> None:
    puller = PrometheusPuller(prometheus_server.url)
    start, end = window(prometheus_history)
    sel = 'gateway_requests_total{service="shelf-vision", tier="edge", outcome=~"ok|error"}'.replace(
        "gateway_requests_total", REQUESTS_TOTAL
    )
    want = expected(
        prometheus_history,
        [req("local", "ok"), req("local", "error"), req("cache", "ok"), req("private_cloud", "ok")],
    )
    for query in (
        f"sum(rate({sel}[5m]))",
        f"sum by (route) (increase({sel}[1h]))",
        f"sum(irate({sel}[2m])) without (route)",
        f"({sel})",
    ):
        assert_same(puller.pull_minutes(query, start, end), want)


def test_a_query_without_an_exact_count_is_refused_before_any_request() -> None:
    session = ScriptedSession([])
    puller = PrometheusPuller("http://prometheus.invalid", session=session)
    start = from_epoch_minute(29_000_000)
    for query in (
        "histogram_quantile(0.9, sum(rate(x_bucket[5m])) by (le))",
        "sum(rate(a[5m])) / sum(rate(b[5m]))",
    ):
        with pytest.raises(PrometheusQueryError, match="cannot be pulled exactly"):
            puller.pull_minutes(query, start, start + timedelta(minutes=5))
    assert session.calls == []


# -- without a server: scripted HTTP answers ----------------------------------------------------


class ScriptedSession(requests.Session):
    def __init__(self, answers: list[Any]) -> None:
        super().__init__()
        self.answers = answers
        self.calls: list[dict[str, str]] = []

    def post(self, url: str | bytes, data: Any = None, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append(dict(data))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        response = requests.Response()
        response.status_code = answer[0]
        response._content = answer[1].encode()
        return response


EMPTY_MATRIX = '{"status":"success","data":{"resultType":"matrix","result":[]}}'


@pytest.mark.parametrize("failure", [(429, "slow down"), (503, "busy"), requests.Timeout("t")])
def test_it_backs_off_with_jitter_on_overload_then_succeeds(failure: Any) -> None:
    session = ScriptedSession([failure, failure, (200, EMPTY_MATRIX)])
    sleeps: list[float] = []
    puller = PrometheusPuller("http://127.0.0.1:1", session=session, sleep=sleeps.append, backoff_base_s=1)
    start = from_epoch_minute(29_000_000)
    got = puller.pull_minutes("x_total", start, start + timedelta(minutes=3))
    assert not got.present.any()
    assert len(session.calls) == 3
    assert 0 <= sleeps[0] <= 1 and 0 <= sleeps[1] <= 2


def test_it_gives_up_after_bounded_retries_with_the_reason() -> None:
    session = ScriptedSession([(503, "busy")] * 3)
    puller = PrometheusPuller("http://127.0.0.1:1", session=session, sleep=lambda _: None, max_retries=2)
    start = from_epoch_minute(29_000_000)
    with pytest.raises(PrometheusUnavailable, match="HTTP 503 after 3 attempts"):
        puller.pull_minutes("x_total", start, start + timedelta(minutes=3))


def test_it_sends_credentials_but_never_shows_them() -> None:
    session = ScriptedSession([(200, EMPTY_MATRIX)])
    puller = PrometheusPuller("http://127.0.0.1:1", bearer_token="s3cret", session=session)
    assert session.headers["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(puller)


def test_requests_never_exceed_the_point_limit() -> None:
    session = ScriptedSession([(200, EMPTY_MATRIX)] * 10)
    puller = PrometheusPuller(
        "http://127.0.0.1:1", session=session, max_points_per_request=100, lookback_minutes=5
    )
    start = from_epoch_minute(29_000_000)
    puller.pull_minutes("x_total", start, start + timedelta(minutes=500))
    points = [(int(c["end"]) - int(c["start"])) // 60 + 1 for c in session.calls]
    assert max(points) <= 100
    assert sum(points) == 500 + 5 + 1 + 5  # the range, lookback + left edge before, lookback after
