from __future__ import annotations

import pytest

from routing.policy import recommend_threshold


def known_samples() -> list[tuple[float, bool]]:
    # 100 lookups: similarity >= 0.95 always right; 0.90-0.94 right 9 times in 10; below 0.9 a coin flip
    samples = [(0.95 + i * 0.001, True) for i in range(40)]
    samples += [(0.90 + (i % 5) * 0.01, i % 10 != 0) for i in range(30)]
    samples += [(0.50 + i * 0.01, i % 2 == 0) for i in range(30)]
    return samples


def test_it_picks_the_lowest_threshold_under_the_target() -> None:
    rec = recommend_threshold(known_samples(), max_false_hit_rate=0.05, cost_saved_per_hit=0.002)
    assert rec.status == "ok"
    # at 0.90 all 70 upper samples hit with 3 wrong (4.3%); at 0.79 the coin flips push it above 5%
    assert rec.threshold == pytest.approx(0.90)
    assert rec.expected_hit_rate == pytest.approx(0.70)
    assert rec.false_hit_rate == pytest.approx(3 / 70)
    assert rec.cost_saved == pytest.approx(1000 * 0.70 * 0.002)
    by_threshold = {round(row.threshold, 2): row for row in rec.table}
    assert by_threshold[0.95].false_hit_rate == 0
    assert by_threshold[0.5].hits == 100


def test_a_strict_target_moves_the_threshold_up() -> None:
    rec = recommend_threshold(known_samples(), max_false_hit_rate=0.0)
    # the three wrong answers in the 0.90-0.94 band all sit at exactly 0.90
    assert rec.threshold == pytest.approx(0.91) and rec.false_hit_rate == 0
    assert rec.cost_saved is None


def test_it_refuses_to_guess_from_too_few_samples() -> None:
    empty = recommend_threshold([], max_false_hit_rate=0.05)
    assert empty.status == "insufficient_samples" and empty.threshold is None and empty.table == ()
    few = recommend_threshold(known_samples()[:10], max_false_hit_rate=0.05)
    assert few.status == "insufficient_samples" and "10 samples" in few.reason


def test_it_says_when_no_threshold_is_safe() -> None:
    rec = recommend_threshold([(0.99, False)] * 40, max_false_hit_rate=0.1)
    assert rec.status == "no_safe_threshold" and rec.threshold is None


def test_it_validates_the_target() -> None:
    with pytest.raises(ValueError):
        recommend_threshold(known_samples(), max_false_hit_rate=1.5)
