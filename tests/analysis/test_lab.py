import math

from mnist_lab.analysis.lab import reproduced


def entry(accuracy, accuracy_std, loss, loss_std, lab=(0.2737, 0.9226), seeds=5):
    return {"test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std, "test_loss_mean": loss,
            "test_loss_std": loss_std, "lab_test_loss": lab[0], "lab_test_accuracy": lab[1], "seeds": seeds}


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


def _cnn_record(accuracy, epochs, images, conv_activation=None):
    return {"test_accuracy": accuracy, "epochs": epochs, "data": {"train_images": images},
            "config": {"model": {"type": "cnn", "activation": "sigmoid", "conv_activation": conv_activation}}}


def test_a_sigmoid_cnn_at_chance_after_too_few_images_gets_a_note_and_no_other_does():
    from mnist_lab.analysis.lab import plateau_note

    stuck = [_cnn_record(0.1135, 8, 5000), _cnn_record(0.1660, 8, 5000)]
    assert plateau_note(stuck) == (
        "Note: 2 CNN results are at chance (11.3%-16.6%) after 40,000 images seen or fewer: too few updates to "
        "leave the plateau the lab's sigmoid CNN starts on, which it left after 60,000-180,000 images at learning "
        "rate 0.5 (1-3 epochs of full MNIST); 36 epochs of 5,000 images would see 180,000.")
    assert plateau_note([_cnn_record(0.95, 8, 5000)]) == ""  # it learned
    assert plateau_note([_cnn_record(0.11, 10, 60000)]) == ""  # enough images: something else is wrong
    assert plateau_note([_cnn_record(0.11, 1, 5000, conv_activation="relu")]) == ""  # no sigmoid plateau
