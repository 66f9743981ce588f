"""What the numbers support: the two tests that the tables' and REPORT.md's verdicts and trend
sentences over seeds rest on, defined once.

- A single run (the lab report's) against n runs of ours (seeds) of the same setting: inside or
  outside the 95 % prediction interval of one new run, mean ± t(0.975, n − 1) · s · √(1 + 1/n)
  (runs that differ by normal noise). It holds a genuine new run 95 % of the time whatever n is;
  the "mean ± 2 s" used before held it only about 78 % of the time with three seeds (both simulated
  in tests/analysis/test_evidence.py).
- Two settings, each over its seeds: a difference of their means is a finding only when Welch's
  t-test (unequal variances) puts it beyond what seed-to-seed noise gives at the 5 % level;
  otherwise it is "within noise".

Both from SciPy's Student t distribution and its Welch test, not written here.

- One accuracy measured on n images: its sampling error alone, the binomial standard error
  sqrt(p (1 - p) / n) (another draw of the images; a training seed adds its own noise on top), by
  which two trials of a search scored on the same validation images are told apart or not.
"""

from __future__ import annotations

import math

PREDICTION_LEVEL = 0.95
SIGNIFICANCE = 0.05  # a difference is a finding when noise alone would give one as large less often

CRITERION = ("the lab's single run lies inside the 95 % prediction interval of one run from ours, "
             "mean ± t(0.975, n − 1) · s · √(1 + 1/n) over our n seeds")


def prediction_half_width(std: float, seeds: int) -> float:
    """Half the width of the prediction interval of one new run, from ``seeds`` runs whose sample
    standard deviation is ``std``; NaN with fewer than two runs (no spread to judge by)."""
    if seeds < 2 or math.isnan(std):
        return math.nan
    from scipy.stats import t

    return float(t.ppf((1 + PREDICTION_LEVEL) / 2, seeds - 1)) * std * math.sqrt(1 + 1 / seeds)


def interval_distance(mean: float, std: float, seeds: int, value: float) -> float:
    """How far a single run's ``value`` lies from our mean, in half-widths of the prediction
    interval (signed, value − ours): inside the interval when at most 1 in size. NaN with one seed."""
    half_width = prediction_half_width(std, seeds)
    if math.isnan(half_width) or math.isnan(value):
        return math.nan
    if half_width == 0:  # every seed gave the same number
        return 0.0 if value == mean else math.copysign(math.inf, value - mean)
    return (value - mean) / half_width


def difference_p_value(first: tuple, second: tuple) -> float:
    """Welch's two-sided p-value for the difference of two settings' means, each given as
    (mean, sample std, seeds); NaN where there is no spread to judge by (fewer than two seeds, or
    every seed of both alike)."""
    (mean_a, std_a, n_a), (mean_b, std_b, n_b) = first, second
    if min(n_a, n_b) < 2 or math.isnan(std_a) or math.isnan(std_b) or std_a == std_b == 0:
        return math.nan
    from scipy.stats import ttest_ind_from_stats

    return float(ttest_ind_from_stats(mean_a, std_a, n_a, mean_b, std_b, n_b, equal_var=False).pvalue)


def significant(p_value: float) -> bool:
    """Whether a difference_p_value puts the difference beyond the seeds' noise (below SIGNIFICANCE);
    a NaN one (no spread to judge by) does not."""
    return p_value < SIGNIFICANCE


def accuracy_standard_error(accuracy: float, images: int) -> float:
    """The binomial standard error of an accuracy measured on ``images`` images."""
    return math.sqrt(accuracy * (1 - accuracy) / images)


def signed(value: float, digits: int = 1) -> str:
    """A difference as tables print it: signed, ``digits`` decimals, never "-0.0"."""
    return f"{round(value, digits) + 0.0:+.{digits}f}"
