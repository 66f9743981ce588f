import math

from mnist_lab.analysis.lab import reproduced, within_spread


def entry(accuracy, accuracy_std, loss, loss_std, lab=(0.2737, 0.9226)):
    return {"test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std, "test_loss_mean": loss,
            "test_loss_std": loss_std, "lab_test_loss": lab[0], "lab_test_accuracy": lab[1]}


def test_within_spread_is_mean_plus_or_minus_two_sample_std():
    assert within_spread(0.9220, 0.0003, 0.9226)  # exactly 2 std away: inside
    assert not within_spread(0.9220, 0.00029, 0.9226)
    assert within_spread(0.92, math.nan, 0.92) is None  # one seed: no spread to compare with


def test_reproduced_needs_the_accuracy_and_the_loss_inside():
    assert reproduced(entry(0.9225, 0.0005, 0.2740, 0.0010))
    assert not reproduced(entry(0.9225, 0.0005, 0.2800, 0.0010))  # the accuracy alone is not enough
    assert not reproduced(entry(0.9100, 0.0005, 0.2740, 0.0010))
    assert reproduced(entry(0.9225, math.nan, 0.2740, math.nan)) is None
    assert reproduced(entry(0.9225, 0.0005, 0.2740, 0.0010, lab=(math.nan, math.nan))) is None
