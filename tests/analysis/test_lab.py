import math

import numpy as np
import pytest
from scipy import stats

from mnist_lab.analysis.lab import signed, interval_distance, prediction_half_width, reproduced


def entry(accuracy, accuracy_std, loss, loss_std, lab=(0.2737, 0.9226), seeds=5):
    return {"test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std, "test_loss_mean": loss,
            "test_loss_std": loss_std, "lab_test_loss": lab[0], "lab_test_accuracy": lab[1], "seeds": seeds}


@pytest.mark.parametrize("seeds", [3, 5, 10])
def test_the_interval_holds_a_new_run_95_percent_of_the_time(seeds):
    """The oracle: simulated runs. n runs of ours and one more (the lab's), all from one normal
    distribution; the new run falls inside the interval in 95 % of trials whatever n is, while the
    old "mean ± 2 std" held it far less often with few seeds."""
    draws = np.random.default_rng(seeds).normal(size=(100_000, seeds + 1))
    ours, new = draws[:, :seeds], draws[:, seeds]
    mean, std = ours.mean(axis=1), ours.std(axis=1, ddof=1)
    half_width = np.array([prediction_half_width(value, seeds) for value in std[:2000]])
    inside = np.abs(new[:2000] - mean[:2000]) <= half_width
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


def test_reproduced_needs_the_accuracy_and_the_loss_inside():
    # 5 seeds: half-widths 2.776 * 1.095 * std = 3.04 std.
    assert reproduced(entry(0.9225, 0.0005, 0.2740, 0.0010))
    assert not reproduced(entry(0.9225, 0.0005, 0.2800, 0.0010))  # the accuracy alone is not enough
    assert not reproduced(entry(0.9100, 0.0005, 0.2740, 0.0010))
    # 2.9 std away: inside (the old "mean ± 2 std" said no); 3.1 std away: outside.
    assert reproduced(entry(0.9226 - 0.0029, 0.0010, 0.2737, 0.0010))
    assert not reproduced(entry(0.9226 - 0.0031, 0.0010, 0.2737, 0.0010))
    # The same gap with three seeds: inside their wider interval (4.303 * 1.155 = 4.97 std).
    assert reproduced(entry(0.9226 - 0.0031, 0.0010, 0.2737, 0.0010, seeds=3))
    assert reproduced(entry(0.9225, math.nan, 0.2740, math.nan, seeds=1)) is None
    assert reproduced(entry(0.9225, 0.0005, 0.2740, 0.0010, lab=(math.nan, math.nan))) is None
