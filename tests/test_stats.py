"""avloc_jax.benchmark.stats: paired comparisons (t interval, p, bootstrap, verdict, power)
and the seed-stability test, on cases that can be checked by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from avloc_jax.benchmark import stats


def _rows(a, b):
    return dict(enumerate(a)), dict(enumerate(b))


def test_hand_checked_case_one_to_five():
    # diffs 1..5: mean 3, sample sd sqrt(10 / 4) = sqrt(2.5) = 1.5811;
    # t(0.975, df 4) = 2.7764, half width 2.7764 * 1.5811 / sqrt(5) = 1.9632,
    # CI [1.0368, 4.9632]; t = 3 / (1.5811 / sqrt 5) = 4.2426, p = 2 * t.sf(4.2426, 4) = 0.0132.
    a, b = _rows([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    c = stats.paired_comparison(a, b, delta=1.0)
    assert c.n == 5 and c.seeds == (0, 1, 2, 3, 4)
    assert c.mean == pytest.approx(3.0)
    assert c.sd == pytest.approx(math.sqrt(2.5))
    assert c.ci_low == pytest.approx(1.03676, abs=1e-4)
    assert c.ci_high == pytest.approx(4.96324, abs=1e-4)
    assert c.p == pytest.approx(2 * sps.t.sf(4.242641, 4), rel=1e-5)
    assert c.p == pytest.approx(0.01324, abs=1e-4)
    # The percentile bootstrap of 5 values lies inside their range and around the mean.
    assert 1.0 <= c.boot_low < 3.0 < c.boot_high <= 5.0
    assert c.verdict == stats.SUPPORTED and c.seeds_for_80_power is None
    assert stats.verdict_label(c, "full", "row") == "supported (full ahead)"


def test_sparse_audio_numbers_of_the_issue():
    """docs/ablations sparse_audio, full − gate-0 per seed (×100): +4.41 ± 2.89 over 5 seeds
    is t = 3.41, p ≈ 0.03, CI ≈ [+0.8, +8.0]: supported, not refuted."""
    diffs = [-0.139, 4.140, 5.348, 4.918, 7.793]  # points
    c = stats.paired_comparison(*_rows(diffs, [0.0] * 5), delta=1.0)
    assert c.mean == pytest.approx(4.41, abs=0.01) and c.sd == pytest.approx(2.89, abs=0.01)
    t = c.mean / (c.sd / math.sqrt(5))
    assert t == pytest.approx(3.41, abs=0.01)
    assert c.p == pytest.approx(0.027, abs=0.002)
    assert c.ci_low == pytest.approx(0.83, abs=0.02) and c.ci_high == pytest.approx(8.0, abs=0.02)
    assert c.verdict == stats.SUPPORTED
    # The old rule (d̄ > 2 sd) would have called it refuted.
    assert not c.mean > 2 * c.sd


def test_verdict_boundaries():
    delta = 0.01
    # Tiny differences around 0: the whole CI inside (−Δ, +Δ): ruled out.
    small = stats.paired_comparison(*_rows([0.001, -0.001, 0.002, 0.0, 0.0005], [0] * 5))
    assert small.ci_low > -delta and small.ci_high < delta
    assert small.verdict == stats.RULED_OUT and small.seeds_for_80_power is None
    # Entirely above 0 and not inside ±Δ: supported; negated: supported the other way.
    up = [0.03, 0.04, 0.05, 0.035, 0.045]
    assert stats.paired_comparison(*_rows(up, [0] * 5)).verdict == stats.SUPPORTED
    down = stats.paired_comparison(*_rows([0] * 5, up))
    assert down.verdict == stats.SUPPORTED_OTHER_WAY
    assert stats.verdict_label(down, "full", "concat") == "supported (concat ahead)"
    # Straddling 0, wider than ±Δ: inconclusive, and more seeds needed than were run.
    wide = stats.paired_comparison(*_rows([-0.01, 0.02, 0.005, 0.03, -0.02], [0] * 5))
    assert wide.ci_low < 0 < wide.ci_high and wide.verdict == stats.INCONCLUSIVE
    assert wide.seeds_for_80_power is not None and wide.seeds_for_80_power > wide.n
    assert stats.power_cell(wide) == str(wide.seeds_for_80_power)
    # Real (CI excludes 0) but smaller than Δ: ruled out takes precedence.
    assert stats.interval_verdict(0.001, 0.005, delta) == stats.RULED_OUT
    # The interval edges themselves.
    assert stats.interval_verdict(-delta, 0.005, delta) == stats.INCONCLUSIVE
    assert stats.interval_verdict(0.0, 0.05, delta) == stats.INCONCLUSIVE
    assert stats.interval_verdict(1e-9, 0.05, delta) == stats.SUPPORTED
    with pytest.raises(ValueError):
        stats.interval_verdict(0.0, 1.0, 0.0)


def test_fewer_seeds_than_a_claim_needs_keep_the_numbers():
    c = stats.paired_comparison(*_rows([0.03, 0.04, 0.05], [0, 0, 0]))
    assert c.n == 3 and c.statistical_verdict == stats.SUPPORTED
    assert c.verdict == stats.NO_CLAIM and not c.carries_claim
    assert c.ci_low is not None and c.p is not None
    assert stats.verdict_label(c) == "no claim (n = 3 < 5)"
    # The same numbers with min_n = 3 do claim.
    assert stats.paired_comparison(*_rows([0.03, 0.04, 0.05], [0, 0, 0]), min_n=3).verdict == (
        stats.SUPPORTED
    )


def test_one_seed_is_not_available_and_does_not_crash():
    c = stats.paired_comparison({3: 0.8}, {3: 0.7})
    assert c.n == 1 and c.verdict == stats.NOT_AVAILABLE
    assert c.mean == pytest.approx(0.1) and c.sd is None and c.ci_low is None
    assert stats.verdict_label(c) == "n/a (n = 1)" and stats.power_cell(c) == "—"
    empty = stats.paired_comparison({}, {})
    assert empty.n == 0 and empty.mean is None and empty.verdict == stats.NOT_AVAILABLE


def test_seeds_are_matched_and_mismatches_refused():
    # Given in another order, the values are paired by seed, not by position.
    c = stats.paired_comparison({2: 0.5, 0: 0.9, 1: 0.7}, {0: 0.8, 1: 0.7, 2: 0.4})
    assert c.seeds == (0, 1, 2) and c.diffs == pytest.approx((0.1, 0.0, 0.1))
    with pytest.raises(ValueError, match=r"only in the first: \[2\].*only in the second: \[3\]"):
        stats.paired_comparison({0: 1.0, 1: 1.0, 2: 1.0}, {0: 1.0, 1: 1.0, 3: 1.0})


def test_constant_differences():
    c = stats.paired_comparison(*_rows([0.05] * 5, [0.0] * 5))
    assert c.sd == 0.0 and c.ci_low == c.ci_high == pytest.approx(0.05)
    assert c.p == 0.0 and c.verdict == stats.SUPPORTED
    zero = stats.paired_comparison(*_rows([0.5] * 5, [0.5] * 5))
    assert zero.p == 1.0 and zero.verdict == stats.RULED_OUT


def test_power_of_the_paired_t_test():
    # Standardised effect 1: 10 pairs give 80.3 % power (9 give 74.8 %); effect 0.5: 34.
    assert stats.paired_t_power(1.0, 10) == pytest.approx(0.8031, abs=1e-3)
    assert stats.paired_t_power(1.0, 9) < 0.8
    assert stats.seeds_for_power(1.0, 1.0) == 10
    assert stats.seeds_for_power(-0.5, 1.0) == 34  # the sign does not matter
    assert stats.seeds_for_power(0.0, 1.0) is None
    assert stats.seeds_for_power(1e-6, 1.0, max_n=100) is None
    # At effect 0 the test rejects with probability alpha.
    assert stats.paired_t_power(0.0, 7) == pytest.approx(0.05, abs=1e-9)


def test_large_effects_have_full_power_not_nan():
    # scipy's nct.cdf is nan in the far tail for large noncentrality (df 3, nc 19.6); the
    # power must still read ~1, and the seed count must be the first n that reaches 80 %.
    assert stats.paired_t_power(9.78, 4) == pytest.approx(1.0)
    assert stats.paired_t_power(9.78, 2) < 0.8
    assert stats.seeds_for_power(9.78, 1.0) == 3


@settings(max_examples=40, deadline=None)
@given(effect=st.floats(0.05, 12.0))
def test_seeds_for_power_is_the_first_n_that_reaches_80_percent(effect):
    n = stats.seeds_for_power(effect, 1.0, max_n=5000)
    assert n is not None and stats.paired_t_power(effect, n) >= stats.TARGET_POWER
    assert n == 2 or stats.paired_t_power(effect, n - 1) < stats.TARGET_POWER


def test_sample_sd_is_ddof_one():
    assert stats.sample_sd([1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert stats.sample_sd([1.0]) is None


def test_seed_stability_brown_forsythe():
    steady = [0.344, 0.347, 0.322, 0.345, 0.333]
    wobbly = [0.293, 0.244, 0.370, 0.314, 0.305]
    result = stats.seed_stability({"full": steady, "concat": wobbly})
    expected = sps.levene(steady, wobbly, center="median")
    assert result.rows == ("full", "concat") and result.n == (5, 5)
    assert result.sd[0] == pytest.approx(np.std(steady, ddof=1))
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p == pytest.approx(expected.pvalue)
    # Not enough values, or nothing varies: no test.
    assert stats.seed_stability({"a": [1.0], "b": [1.0, 2.0]}).p is None
    assert stats.seed_stability({"a": [1.0, 1.0], "b": [2.0, 2.0]}).p is None


def test_as_dict_round_trips_every_field():
    c = stats.paired_comparison(*_rows([1, 2, 3], [0, 1, 1]), delta=1.0)
    d = c.as_dict()
    assert d["n"] == 3 and d["verdict"] == stats.NO_CLAIM and d["diffs"] == [1.0, 1.0, 2.0]
    assert set(d) == set(stats.PairedComparison.__dataclass_fields__)


scores = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=2, max_size=8)


@settings(max_examples=60, deadline=None)
@given(scores, st.data())
def test_properties_of_a_paired_comparison(a_values, data):
    n = len(a_values)
    b_values = data.draw(
        st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False), min_size=n, max_size=n)
    )
    a, b = _rows(a_values, b_values)
    c = stats.paired_comparison(a, b)
    # The intervals contain the mean (t) and lie inside the range of the differences (bootstrap).
    assert c.ci_low <= c.mean + 1e-12 and c.mean - 1e-12 <= c.ci_high
    assert min(c.diffs) - 1e-12 <= c.boot_low <= c.boot_high <= max(c.diffs) + 1e-12
    # Swapping the pair negates mean and interval, keeps p, and turns the verdict around.
    r = stats.paired_comparison(b, a)
    assert r.mean == pytest.approx(-c.mean, abs=1e-12)
    assert r.ci_low == pytest.approx(-c.ci_high, abs=1e-9)
    assert r.ci_high == pytest.approx(-c.ci_low, abs=1e-9)
    assert r.p == pytest.approx(c.p, abs=1e-9)
    flipped = {
        stats.SUPPORTED: stats.SUPPORTED_OTHER_WAY,
        stats.SUPPORTED_OTHER_WAY: stats.SUPPORTED,
    }
    if abs(c.ci_low) > 1e-9 and abs(c.ci_high) > 1e-9 and abs(abs(c.ci_low) - 0.01) > 1e-9:
        assert r.statistical_verdict == flipped.get(c.statistical_verdict, c.statistical_verdict)
    # Adding the same constant to both rows changes nothing (only the differences count).
    shifted = stats.paired_comparison(
        *_rows([x + 0.25 for x in a_values], [x + 0.25 for x in b_values])
    )
    assert shifted.mean == pytest.approx(c.mean, abs=1e-9)
    assert shifted.sd == pytest.approx(c.sd, abs=1e-9)
    # Inconclusive means the interval straddles 0, so more seeds are needed than were run.
    if c.statistical_verdict == stats.INCONCLUSIVE and c.seeds_for_80_power is not None:
        assert c.seeds_for_80_power > c.n


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=-0.05, max_value=0.05, allow_nan=False), min_size=2, max_size=6),
    st.floats(min_value=0.1, max_value=10.0),
)
def test_verdict_is_invariant_to_the_scale_of_scores_and_delta(diffs, k):
    # Scores and Δ in other units (e.g. ×100 points) give the same verdict and p.
    a, b = _rows(diffs, [0.0] * len(diffs))
    c = stats.paired_comparison(a, b, delta=0.01)
    ka, kb = _rows([k * d for d in diffs], [0.0] * len(diffs))
    s = stats.paired_comparison(ka, kb, delta=0.01 * k)
    assert s.mean == pytest.approx(k * c.mean, abs=1e-12)
    if c.sd > 1e-9:
        assert s.p == pytest.approx(c.p, rel=1e-6, abs=1e-12)
        edges = (c.ci_low, c.ci_high, c.ci_low - 0.01, c.ci_high + 0.01, c.ci_high - 0.01)
        if all(abs(e) > 1e-9 for e in edges) and abs(c.ci_low + 0.01) > 1e-9:
            assert s.statistical_verdict == c.statistical_verdict
