"""The composite math against an independent computation from the members' counts."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slo.composites.core import composite_sums, evaluate_composite
from slo.composites.spec import CompositeSpec, parse_composite_spec
from slo.engine import WindowSums, batch_params, error_budget_ratio

NOW = datetime(2026, 3, 11, 12, 34, tzinfo=UTC)


def independent(members, weights, aggregation):
    """Plain Python, window by window: (bad fraction or None, deciding member or None, journey events)."""
    out = []
    for col in range(len(members[0])):
        with_data = [(i, g, v, e) for i, row in enumerate(members) for (g, v, e) in [row[col]] if v > 0]
        if not with_data:
            out.append((None, None, 0.0))
            continue
        fractions = {i: (v - min(g, v)) / v for i, g, v, _e in with_data}
        events = sum(e for *_x, e in with_data)
        if aggregation == "weighted_average":
            total_weight = sum(weights[i] for i in fractions)
            parts = {i: weights[i] * f / total_weight for i, f in fractions.items()}
            bad = sum(parts.values())
        else:
            parts = {i: f for i, f in fractions.items()}
            bad = max(fractions.values())
        top = max(parts.values())
        deciding = min(i for i, p in parts.items() if p == top)
        out.append((bad, deciding, events))
    return out


counts = st.tuples(st.integers(0, 5000), st.integers(0, 5000)).map(lambda t: (min(t), max(t)))
members_strategy = st.integers(2, 6).flatmap(
    lambda n: st.tuples(
        st.lists(st.lists(counts, min_size=4, max_size=4), min_size=n, max_size=n),
        st.lists(st.floats(0.01, 100, allow_nan=False), min_size=n, max_size=n),
        st.sampled_from(["weighted_average", "least_healthy"]),
        st.sampled_from([90.0, 99.0, 99.5, 99.9, 99.95]),
    )
)


def member_sums(rows):
    good = np.array([[g for g, _v in row] for row in rows], dtype=float)
    valid = np.array([[v for _g, v in row] for row in rows], dtype=float)
    return WindowSums(good=good, valid=valid, valid_events=valid, missing_minutes=np.zeros(good.shape, int))


@settings(max_examples=300, deadline=None)
@given(members_strategy)
def test_the_composite_equals_an_independent_computation_from_member_counts(case):
    rows, weights, aggregation, objective = case
    parts = composite_sums(member_sums(rows), weights, aggregation)
    expected = independent([[(g, v, v) for g, v in row] for row in rows], weights, aggregation)
    budget = error_budget_ratio(objective)
    for col, (bad, deciding, events) in enumerate(expected):
        if bad is None:
            assert math.isnan(parts.bad_fraction[col])
            assert parts.deciding_member[col] == -1
            assert parts.sums.valid[0, col] == 0  # no data: the engine says no_data, never 100%
            continue
        assert parts.bad_fraction[col] == pytest.approx(bad, rel=1e-12, abs=1e-15)
        assert parts.deciding_member[col] == deciding
        assert parts.sums.valid_events[0, col] == events
        # the contributions add up to the composite's bad fraction
        assert np.nansum(parts.contribution[:, col]) == pytest.approx(bad, rel=1e-12, abs=1e-15)
        # the engine's view of the composite's sums: SLI 1 - bf, burn bf / (1 - objective)
        g, v = parts.sums.good[0, col], parts.sums.valid[0, col]
        assert g / v == pytest.approx(1 - bad, rel=1e-12, abs=1e-15)
        assert ((v - g) / v) / budget == pytest.approx(bad / budget, rel=1e-9, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(members_strategy)
def test_budget_and_burn_rates_from_the_engine_match_the_definition(case):
    rows, weights, aggregation, objective = case
    spec = CompositeSpec.model_validate(
        {
            "name": "journey",
            "service": "shelf-vision",
            "objective": objective,
            "window": {"days": 28},
            "aggregation": aggregation,
            "members": [{"slo": f"shelf-vision/m-{i}", "weight": w} for i, w in enumerate(weights)],
        }
    )
    params = batch_params([spec.engine_spec()], now=NOW)
    n_cols = len(params.burn_windows_min) + 1
    # every column of the batch: repeat the 4 generated windows
    wide = [[row[c % 4] for c in range(n_cols)] for row in rows]
    parts, result = evaluate_composite(member_sums(wide), weights, aggregation, params)
    expected = independent([[(g, v, v) for g, v in row] for row in wide], weights, aggregation)
    budget = error_budget_ratio(objective)
    for col, (bad, _deciding, _events) in enumerate(expected):
        if bad is None:
            assert math.isnan(result.burn_rate[0, col])
            assert result.data_quality[0, col] == 2  # no_data
        else:
            assert result.burn_rate[0, col] == pytest.approx(bad / budget, rel=1e-9, abs=1e-9)
            assert result.sli[0, col] == pytest.approx(1 - bad, rel=1e-12, abs=1e-12)
    period_bad = expected[-1][0]
    remaining = result.error_budget_remaining_ratio[0]
    if period_bad is None:
        assert math.isnan(remaining)
    else:
        assert remaining == pytest.approx(1 - period_bad / budget, rel=1e-9, abs=1e-9)


def test_a_member_without_data_is_not_counted_as_good():
    # member 0: 10% bad; member 1: no data at all. Averaged as good it would give 5%.
    sums = member_sums([[(90, 100)], [(0, 0)]])
    parts = composite_sums(sums, [1.0, 1.0], "weighted_average")
    assert parts.bad_fraction[0] == pytest.approx(0.1)
    assert not parts.member_has_data[1, 0]
    assert math.isnan(parts.contribution[1, 0])


def test_least_healthy_takes_the_worst_member_and_names_it():
    sums = member_sums([[(999, 1000)], [(950, 1000)], [(990, 1000)]])
    parts = composite_sums(sums, [5.0, 1.0, 1.0], "least_healthy")
    assert parts.bad_fraction[0] == pytest.approx(0.05)
    assert parts.deciding_member[0] == 1
    assert list(parts.contribution[:, 0]) == [0.0, pytest.approx(0.05), 0.0]


def test_weights_bias_the_average():
    sums = member_sums([[(900, 1000)], [(1000, 1000)]])
    parts = composite_sums(sums, [3.0, 1.0], "weighted_average")
    assert parts.bad_fraction[0] == pytest.approx(0.075)


@pytest.mark.parametrize(
    ("members", "path"),
    [
        ([{"slo": "a/b"}], "members"),
        ([{"slo": f"a/b{i}"} for i in range(26)], "members"),
        ([{"slo": "a/b"}, {"slo": "a/c", "weight": 0}], "members[1].weight"),
        ([{"slo": "a/b"}, {"slo": "a/c", "weight": -1}], "members[1].weight"),
        ([{"slo": "a/b"}, {"slo": "a/b"}], "members[1].slo"),
        ([{"slo": "a/b"}, {"slo": "not a ref"}], "members[1].slo"),
    ],
)
def test_bad_members_are_problems_with_field_paths(members, path):
    spec, problems = parse_composite_spec(
        {"name": "j", "service": "a", "objective": 99, "window": {"days": 28}, "members": members}
    )
    assert spec is None
    assert path in [p.path for p in problems]
