"""`mnist-lab predict`: the user's own digit images, prepared the way MNIST's were, classified by
a run's model.

MNIST's digits were made by fitting each scanned digit, aspect ratio kept, into a 20 x 20 box
(anti-aliased, so grey levels) and placing that box in a 28 x 28 image so that the centre of
mass of its pixels lies at the centre; ink is light on a dark background. ``mnist_like`` does
the same to any photo or drawing: grey levels, inverted when the background is light, cropped
to the digit's bounding box, scaled into 20 x 20, centred by mass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_lab.core.data import IMAGE_SHAPE, model_inputs
from mnist_lab.analysis.paper import MIN_CONTRAST, paper_window, separate
from mnist_lab.core.errors import UsageError, printable
from mnist_lab.core.files import UnreadableFile, read_bounded
from mnist_lab.results.store import DamagedResult, read_run
from mnist_lab.training.saved_models import class_probabilities, load_run_model

BOX = 20  # MNIST's digits fit a 20 x 20 box inside the 28 x 28 image
EDGE = 2  # pixels around the thresholded strokes kept as their soft edges
FULL_INK = 90  # the percentile of the digit's ink drawn at full intensity (255), as MNIST's cores are
TOP = 3  # digits printed per image
UNSURE = 0.5  # a likeliest digit below this probability makes the answer doubtful


IMAGE_BYTES = 256 * 2**20  # an image file larger than this is no photograph of a digit
IMAGE_SIDE = 2048  # larger images are reduced first (by whole factors): a digit needs far less
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # 16-bit grey levels (PNG's read as "I" too)
_WIDE_WHITE = 65535


def read_grey(path: Path) -> np.ndarray:
    """The image at ``path`` as grey levels 0-255 (transparent parts as white paper). The file is
    read without blocking (a FIFO is refused, not waited on) and bounded in size."""
    import io

    from PIL import Image, UnidentifiedImageError

    named = printable(path)
    try:
        data = read_bounded(path, IMAGE_BYTES)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return read_grey_image(image)
    except FileNotFoundError:
        raise UsageError(f"{named}: no such file") from None
    except (UnreadableFile, IsADirectoryError) as error:
        if Path(path).is_dir():
            raise UsageError(f"{named}: is a folder, expected an image file") from None
        raise UsageError(f"{named}: {error.strerror}, expected an image file") from None
    except UnidentifiedImageError:
        raise UsageError(f"{named}: not an image (expected PNG, JPEG or another format Pillow reads)") from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise UsageError(f"{named}: cannot read the image ({error})") from None


def read_grey_image(image) -> np.ndarray:
    """A Pillow image as grey levels 0-255, transparent parts as white paper (a drawing app's
    strokes on a transparent canvas). 16-bit and 32-bit grey levels are scaled to 0-255, not
    clipped (Pillow's convert("L") clips them: only pure black would survive as ink); 32-bit
    floats are read as 0-1. An image larger than IMAGE_SIDE is first reduced by a whole factor."""
    from PIL import Image

    if image.mode == "1":
        image = image.convert("L")
    factor = -(-max(image.size) // IMAGE_SIDE)
    if factor > 1:
        image = image.reduce(factor)
    if image.mode in _WIDE_MODES:
        grey = np.asarray(image, dtype=np.float64)
        return np.clip(grey * (255 / max(_WIDE_WHITE, grey.max())), 0, 255)
    if image.mode == "F":
        grey = np.asarray(image, dtype=np.float64)
        return np.clip(grey * (255 if grey.max() <= 1 else 1), 0, 255)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64)


def mnist_like(grey: np.ndarray, where: str, dark: bool | None = None, threshold: float | None = None) -> Prepared:
    """The digit in ``grey`` (any size, either polarity: dark ink on light paper when ``dark``,
    guessed when None) as a 28 x 28 uint8 image made the way MNIST's were, with the doubts its
    separation from the paper leaves; UsageError naming ``where`` when it holds no digit."""
    from PIL import Image
    from scipy import ndimage

    ink = separate(grey, dark, threshold)
    strongest = float(ink.amount.max())
    if strongest < MIN_CONTRAST:
        spread = float(np.ptp(grey)) if grey.size else 0.0
        wide = (f"; a dark area wider than {paper_window(grey.shape)} pixels is taken for paper in shadow"
                if spread >= 255 * MIN_CONTRAST else "")
        raise UsageError(f"{printable(where)}: no digit found (no ink stands out from the paper around it: "
                         f"{255 * strongest:.0f} grey levels at most, at least {255 * MIN_CONTRAST:.0f} expected"
                         f"{wide})")
    if not ink.digit.any():
        raise UsageError(f"{printable(where)}: no digit found (no ink reaches the threshold {ink.threshold:.2f} once "
                         f"the lines across the image are left out; the strongest takes {strongest:.2f} of the "
                         f"paper's light)")
    # The strokes' soft edges, below the threshold, belong to the digit too (MNIST's are grey).
    near = ndimage.binary_dilation(ink.digit, structure=np.ones((3, 3), dtype=bool), iterations=EDGE)
    rows, columns = np.nonzero(ink.digit)
    crop = (slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
    digit = (ink.amount * near)[crop]
    digit = np.clip(digit * (255 / np.percentile(ink.amount[ink.digit], FULL_INK)), 0, 255)
    scale = BOX / max(digit.shape)
    size = (max(1, round(digit.shape[1] * scale)), max(1, round(digit.shape[0] * scale)))  # (width, height)
    boxed = np.asarray(Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    boxed = np.clip(boxed, 0, 255)
    total = boxed.sum()
    mass = np.array([boxed.sum(axis=1) @ np.arange(boxed.shape[0]), boxed.sum(axis=0) @ np.arange(boxed.shape[1])])
    # The box's corner that puts its centre of mass on pixel (14, 14), where MNIST's lie (their
    # mean over the 10,000 test digits: row 13.99, column 14.01): placed at the whole pixel, then
    # moved by the fraction left (bilinear). Rounding alone leaves it up to half a pixel off: on
    # test digits drawn 3x larger, the 5th percentile of the correlation with the original
    # digits rose from 0.83 (rounded) to 0.90 (moved).
    corner = np.array(IMAGE_SHAPE) / 2 - mass / total
    whole = np.clip(np.floor(corner), 0, np.array(IMAGE_SHAPE) - boxed.shape).astype(int)
    fraction = np.where(whole == np.floor(corner), corner - whole, 0)  # none where the edge stopped it
    canvas = np.zeros(IMAGE_SHAPE)
    canvas[whole[0]:whole[0] + boxed.shape[0], whole[1]:whole[1] + boxed.shape[1]] = boxed
    canvas = ndimage.shift(canvas, fraction, order=1, mode="constant")
    return Prepared(np.rint(canvas).astype(np.uint8), ink.doubts)


@dataclass(frozen=True)
class Prepared:
    """An image as the model sees it (28 x 28 uint8) and why its preparation is doubtful."""

    image: np.ndarray
    doubts: tuple[str, ...]


@dataclass(frozen=True)
class Classifier:
    """A run's model and what its inputs must look like."""

    run: Path
    model_type: str
    scaled: bool
    model_file: Path

    @classmethod
    def of_run(cls, run) -> "Classifier":
        """The classifier of run folder ``run``; UsageError when it is not a complete run."""
        run = Path(run)
        if run.exists() and not run.is_dir():
            raise UsageError(f"{printable(run)}: a file, not a run folder (mnist-lab runs --where kind=run lists them)")
        if not run.is_dir():
            raise UsageError(f"{printable(run)}: no such run folder (mnist-lab runs --where kind=run lists them)")
        try:
            record = read_run(run)
        except DamagedResult as error:
            raise UsageError(f"{run}: not a complete run with a model ({error})") from None
        return cls(run, record["model"], record["config"]["data"].get("scaled", True), Path(record["model_file"]))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of 28 x 28 uint8 ``images`` (one row per image)."""
        inputs = model_inputs(images, self.model_type, self.scaled)
        return class_probabilities(load_run_model(self.model_file), inputs)


def checked_threshold(threshold, where: str):
    """UsageError unless ``threshold`` is None or a share of the paper's light in (0, 1]."""
    if threshold is not None and not 0 < threshold <= 1:  # NaN fails this too
        raise UsageError(f"{where} {threshold}: expected a share of the paper's light, more than 0 and at most 1")


def prepared(paths, dark: bool | None = None, threshold: float | None = None) -> list[Prepared]:
    """The MNIST-like 28 x 28 image of every path (see mnist_like); one UsageError listing every
    bad one."""
    images, problems = [], []
    for path in paths:
        try:
            images.append(mnist_like(read_grey(Path(path)), str(path), dark, threshold))
        except UsageError as error:
            problems.append(str(error))
    if problems:
        raise UsageError("\n".join(problems))
    return images


@dataclass(frozen=True)
class Answer:
    """What the model reads in one image: the likeliest digits, likeliest first, with their
    probabilities; the 28 x 28 image it saw; why the answer is doubtful (empty when it is not)."""

    image: str
    digits: list[tuple[int, float]]
    seen: np.ndarray
    doubts: tuple[str, ...]


def answers(classifier: Classifier, paths, dark: bool | None = None, threshold: float | None = None) -> list[Answer]:
    """The model's answer for every image in ``paths``; UsageError naming every unreadable one."""
    seen = prepared(paths, dark, threshold)
    probabilities = classifier.probabilities(np.stack([image.image for image in seen]))
    found = []
    for path, image, digits in zip(paths, seen, top_digits(probabilities)):
        unsure = (f"the model is unsure (its likeliest digit has {digits[0][1]:.0%})",) \
            if digits[0][1] < UNSURE else ()
        found.append(Answer(str(path), digits, image.image, image.doubts + unsure))
    return found


def top_digits(probabilities: np.ndarray, count=TOP) -> list[list[tuple[int, float]]]:
    """Per image, the ``count`` likeliest digits with their probabilities, likeliest first."""
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :count]
    return [[(int(digit), float(row[digit])) for digit in digits] for row, digits in zip(probabilities, order)]


def seen_names(paths) -> list[str]:
    """The --show file name of each image, <stem>.28x28.png, numbered where two stems are alike
    (a/7.png and b/7.png), skipping any number another image's name already takes (7.png, 7.png
    and 7-1.png), so that no image's file replaces another's."""
    stems = [Path(path).stem for path in paths]
    taken, names = {stem for stem in stems}, []
    counts = {}
    for stem in stems:
        name = stem
        if stems.count(stem) > 1:
            counts[stem] = counts.get(stem, 0) + 1
            while f"{stem}-{counts[stem]}" in taken:
                counts[stem] += 1
            name = f"{stem}-{counts[stem]}"
            taken.add(name)
        names.append(f"{name}.28x28.png")
    return names
