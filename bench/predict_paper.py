"""`mnist-lab predict` on digits on paper: a run's accuracy per paper condition.

The conditions are the tests' generator (tests/paper_digits.py): clean white paper, noisy grey
paper, a shadow, ruled paper, a thick marker. The digits are the first DIGITS MNIST test digits
drawn with seed 7; the preprocessing's constants were chosen on other digits (the last 500, seed
1), so these figures are not fitted to. Per condition: accuracy against the labels, agreement with
the model's reading of the clean 28 x 28 arrays, the share of answers marked doubtful, and the
accuracy of the others.

    python bench/predict_paper.py results/runs/cnn-<key> [--digits 1000]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from mnist_lab.analysis import predict  # noqa: E402
from mnist_lab.core.data import load_builtin  # noqa: E402
from paper_digits import CONDITIONS, paper_digits  # noqa: E402

SEED = 7


def measure(run: Path, digits: int) -> list[dict]:
    data = load_builtin()
    images, labels = data.x_test[:digits], data.y_test[:digits]
    classifier = predict.Classifier.of_run(run)
    on_arrays = classifier.probabilities(images).argmax(axis=1)
    rows = [{"condition": "28x28 arrays", "accuracy": (on_arrays == labels).mean(), "agreement": 1.0,
             "doubtful": float("nan"), "sure_accuracy": float("nan"), "ms": float("nan")}]
    for condition in CONDITIONS:
        greys = [predict.read_grey_image(image) for image in paper_digits(images, condition, SEED)]
        started = time.perf_counter()
        seen = [predict.mnist_like(grey, condition) for grey in greys]
        milliseconds = 1000 * (time.perf_counter() - started) / digits
        probabilities = classifier.probabilities(np.stack([image.image for image in seen]))
        read = probabilities.argmax(axis=1)
        doubtful = np.array([bool(image.doubts) for image in seen]) | (probabilities.max(axis=1) < predict.UNSURE)
        rows.append({"condition": condition, "accuracy": (read == labels).mean(),
                     "agreement": (read == on_arrays).mean(), "doubtful": doubtful.mean(),
                     "sure_accuracy": (read == labels)[~doubtful].mean(), "ms": milliseconds})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--digits", type=int, default=1000)
    arguments = parser.parse_args()
    rows = measure(arguments.run, arguments.digits)
    print(f"{arguments.run.name}, {arguments.digits} test digits per condition, seed {SEED}")
    print(f"{'condition':14} {'accuracy':>9} {'agreement':>10} {'doubtful':>9} {'accuracy of the rest':>21} "
          f"{'ms/image':>9}")
    for row in rows:
        print(f"{row['condition']:14} {row['accuracy']:9.1%} {row['agreement']:10.1%} {row['doubtful']:9.1%} "
              f"{row['sure_accuracy']:21.1%} {row['ms']:9.1f}")


if __name__ == "__main__":
    main()
