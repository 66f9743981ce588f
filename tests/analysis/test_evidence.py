import math

import numpy as np
import pytest
from scipy import stats

from mnist_lab.analysis.evidence import (difference_p_value, interval_distance, prediction_half_width, signed,
                                         significant)


def beyond_noise(first, second):
    """The report's verdict on a difference (report_answers.trend): None without a spread to judge by."""
    p_value = difference_p_value(first, second)
    return None if math.isnan(p_value) else significant(p_value)


@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_the_interval_holds_a_new_run_95_percent_of_the_time(seeds):
    """The oracle: simulated runs. n runs of ours and one more (the lab's), all from one normal
    distribution; the new run falls inside the interval in 95 % of trials whatever n is, while the
    old "mean ± 2 std" held it far less often with few seeds."""
    draws = np.random.default_rng(seeds).normal(size=(100_000, seeds + 1))
    ours, new = draws[:, :seeds], draws[:, seeds]
    mean, std = ours.mean(axis=1), ours.std(axis=1, ddof=1)
    half_width = np.array([prediction_half_width(value, seeds) for value in std[:2000]])
    scale = prediction_half_width(1.0, seeds)  # the half-width is proportional to the std
    np.testing.assert_allclose(half_width, scale * std[:2000])
    coverage = np.mean(np.abs(new - mean) <= scale * std)
    assert abs(coverage - 0.95) < 0.005
    if seeds == 3:
        assert abs(np.mean(np.abs(new - mean) <= 2 * std) - 0.78) < 0.01


def test_the_half_width_is_students_t_times_the_std_and_the_new_runs_own_spread():
    assert prediction_half_width(0.001, 5) == pytest.approx(stats.t.ppf(0.975, 4) * 0.001 * math.sqrt(1.2))
    assert prediction_half_width(0.001, 3) == pytest.approx(4.303 * 0.001 * math.sqrt(4 / 3), rel=1e-4)
    assert math.isnan(prediction_half_width(math.nan, 1))  # one seed: no spread to judge by


def test_the_distance_is_in_half_widths_and_signed():
    half_width = prediction_half_width(0.0010, 5)
    assert interval_distance(0.9200, 0.0010, 5, 0.9200 + half_width) == pytest.approx(1.0)
    assert interval_distance(0.9200, 0.0010, 5, 0.9200 - 2 * half_width) == pytest.approx(-2.0)
    assert interval_distance(0.9200, 0.0, 5, 0.9200) == 0.0
    assert interval_distance(0.9200, 0.0, 5, 0.9300) == math.inf
    assert math.isnan(interval_distance(0.9200, math.nan, 1, 0.9226))
    assert [signed(value) for value in (-0.03, 0.04, -1.26, math.inf)] == ["+0.0", "+0.0", "-1.3", "+inf"]
    assert signed(-0.00004, 4) == "+0.0000" and signed(0.123, 2) == "+0.12"


def test_a_difference_is_judged_by_welchs_test_on_the_seeds():
    """The oracle: SciPy's Welch test on the raw seeds gives the same p-value as the summary's."""
    first, second = [0.9226, 0.9231, 0.9218, 0.9240, 0.9229], [0.9241, 0.9236, 0.9252, 0.9230, 0.9247]
    summary = [(np.mean(values), np.std(values, ddof=1), len(values)) for values in (first, second)]
    expected = stats.ttest_ind(first, second, equal_var=False).pvalue
    assert difference_p_value(*summary) == pytest.approx(expected)
    assert beyond_noise(*summary) == (expected < 0.05)


def test_within_noise_means_what_noise_alone_gives():
    """Settings that differ only by noise are called different about 5 % of the time; a real
    difference of three stds over five seeds almost always is; a difference smaller than the spread
    (the report's epochs trend: +0.08 points, stds 0.09-0.14) is within noise."""
    rng = np.random.default_rng(0)

    def called_different(shift, trials=4000):
        runs = rng.normal(size=(trials, 2, 5))
        runs[:, 1] += shift
        return np.mean([beyond_noise(*[(row.mean(), row.std(ddof=1), 5) for row in pair]) for pair in runs])

    assert abs(called_different(0.0) - 0.05) < 0.012
    assert called_different(3.0) > 0.95
    assert beyond_noise((0.9226, 0.0009, 5), (0.9234, 0.0014, 5)) is False
    assert beyond_noise((0.9226, 0.0009, 5), (0.9485, 0.0009, 5)) is True
    assert beyond_noise((0.9226, math.nan, 1), (0.9485, 0.0009, 5)) is None
    assert beyond_noise((0.92, 0.0, 3), (0.93, 0.0, 3)) is None  # no spread at all: nothing to judge by
