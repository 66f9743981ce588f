"""Ink told apart from paper, as document tools do it, for `mnist-lab predict`.

A photo of a digit is paper lit unevenly (a shadow, a gradient), with sensor noise, specks,
printed lines, and ink of any width. Counting every pixel darker than a share of the contrast as
ink fails on all of these: the shadow, a line or one speck stretches the digit's box to the whole
image. Instead:

1. the polarity: dark ink on light paper or light ink on dark, from which side of the local
   median the strong departures lie (or as the user says);
2. the paper's own grey level at every pixel, by a morphological closing (opening for light
   paper... dark paper) wider than any stroke: it follows a shadow's ramp and its edge, and
   the ink is how much of the paper's light a pixel absorbs, so a shadow scales both alike;
3. a threshold on that ink: Otsu's (between-class variance), or the user's;
4. printed lines removed by their shape (thin runs across most of the image), restored where a
   stroke crosses them;
5. the digit as the strongest connected ink component and the parts near it of comparable
   weight; specks and far marks are dropped, and what would make the answer doubtful is said.

Written here because SciPy's ndimage has the morphology and labelling but no threshold or
background model, and scikit-image or OpenCV would be a large dependency for a few lines;
Otsu's threshold is tested against its definition computed by brute force.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_CONTRAST = 0.1  # ink absorbs at least this share of the paper's light (24 grey levels on white)
SMOOTHING = 1.0  # pixels (Gaussian sigma): sensor noise averaged before the ink is thresholded
PAPER_WINDOW = 0.4  # share of the image's shorter side: the closing is wider than any stroke
POLARITY_SIDE = 96  # pixels: the polarity is judged on a thumbnail this large
LINE_SPAN = 0.75  # a printed line runs across at least this share of the image
LINE_RUN = 0.3  # ... in straight runs of at least this share (a 1-degree tilt breaks longer ones)
PART_WEIGHT = 0.08  # a part is kept when its ink weighs at least this share of the digit's
PART_GAP = 0.35  # ... and it lies within this share of the digit's larger side from the digit
RIVAL_WEIGHT = 0.5  # another mark this heavy, far from the digit, makes the image doubtful
THICK = 0.2  # strokes wider than this share of the digit's size are a marker's (MNIST's as seen here: 0.14 median, 0.21 at 95 %)
PEN = 0.16  # ... and are thinned to this width (MNIST's 75th percentile; on generated marker digits 0.16-0.18 read alike, 0.12 worse)
FULL_BOX = 0.6  # ink covering more of the square around the digit is doubtful (MNIST: 0.24 median, 0.57 at 99.9 %)


@dataclass(frozen=True)
class Ink:
    """The ink of an image: ``amount`` (0-1, how much of the paper's light each pixel absorbs),
    ``digit`` (the pixels that belong to the digit), the ``threshold`` that told ink from paper,
    and why the separation is doubtful."""

    amount: np.ndarray
    digit: np.ndarray
    threshold: float
    doubts: tuple[str, ...] = ()


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold between two classes of ``values`` (0-1) with the largest between-class
    variance (Otsu 1979), at bin edges of a ``bins``-bin histogram."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    below = np.cumsum(counts)[:-1].astype(float)
    above = counts.sum() - below
    mass_below = np.cumsum(counts * centres)[:-1]
    usable = (below > 0) & (above > 0)
    mean_below = np.divide(mass_below, below, out=np.zeros_like(below), where=usable)
    mean_above = np.divide(mass_below[-1] + counts[-1] * centres[-1] - mass_below, above,
                           out=np.zeros_like(above), where=usable)
    between = np.where(usable, below * above * (mean_below - mean_above) ** 2, -1.0)
    return float(edges[1:-1][np.argmax(between)])


def dark_ink(grey: np.ndarray) -> bool:
    """Whether ``grey`` holds dark ink on light paper: strong departures from the local median
    lie below it. A shadow's edge departs both ways; only ink departs one way."""
    from scipy import ndimage

    factor = max(1, -(-max(grey.shape) // POLARITY_SIDE))
    thumbnail = _reduced(grey, factor)
    window = max(3, min(thumbnail.shape) // 3)
    median = ndimage.median_filter(thumbnail, window, mode="nearest")
    darker = median - ndimage.minimum_filter(thumbnail, window, mode="nearest")
    lighter = ndimage.maximum_filter(thumbnail, window, mode="nearest") - median
    return bool(darker.sum() >= lighter.sum())


def separate(grey: np.ndarray, dark: bool | None = None, threshold: float | None = None) -> Ink:
    """The ink of ``grey`` (grey levels 0-255), dark on light paper when ``dark`` (guessed when
    None); ``threshold`` (0-1) overrides Otsu's."""
    from scipy import ndimage

    if dark is None:
        dark = dark_ink(grey)
    amount = ink_amount(grey, dark)
    smooth = ink_amount(ndimage.gaussian_filter(grey, SMOOTHING), dark)
    level = max(MIN_CONTRAST, otsu_threshold(smooth)) if threshold is None else threshold
    mask = without_lines(smooth >= level)
    digit, doubts = digit_parts(mask, smooth)
    return thinned(Ink(amount, digit, level, doubts))


def stroke_width(digit: np.ndarray) -> float:
    """The mean width of the strokes in ``digit`` as a share of its box's larger side: twice the
    area over the outline's length (a stroke of width w and length l: 2 w l / 2 l)."""
    from scipy import ndimage

    outline = np.count_nonzero(digit & ~ndimage.binary_erosion(digit, border_value=0))
    rows, columns = np.nonzero(digit)
    return 2 * np.count_nonzero(digit) / max(outline, 1) / (max(np.ptp(rows), np.ptp(columns)) + 1)


def thinned(ink: Ink) -> Ink:
    """``ink`` with strokes wider than MNIST's (a marker's) eroded evenly to MNIST's median
    width (a marker's stroke is about as wide everywhere), so the model sees a pen's digit."""
    from scipy import ndimage

    if not ink.digit.any():
        return ink
    width = stroke_width(ink.digit)
    if width <= THICK:
        return ink
    rows, columns = np.nonzero(ink.digit)
    size = max(np.ptp(rows), np.ptp(columns)) + 1
    depth = (width - PEN) * size / 2  # pixels taken off each side of a stroke
    distance = ndimage.distance_transform_edt(ink.digit)
    # The new edge drawn soft over one pixel; its grey the ink's own.
    cover = np.clip(distance - depth, 0, 1)
    return Ink(cover * np.percentile(ink.amount[ink.digit], 90), distance > depth, ink.threshold, ink.doubts)


def ink_amount(grey: np.ndarray, dark: bool) -> np.ndarray:
    """How much of the paper's light each pixel absorbs (dark ink) or adds (light ink), 0-1, the
    paper's grey level estimated at every pixel by a closing (opening) wider than a stroke."""
    from scipy import ndimage

    window = max(3, round(PAPER_WINDOW * min(grey.shape)))
    if dark:
        paper = ndimage.grey_closing(grey, size=window, mode="nearest")
        return np.clip((paper - grey) / np.maximum(paper, 1.0), 0, 1)
    paper = ndimage.grey_opening(grey, size=window, mode="nearest")
    return np.clip((grey - paper) / np.maximum(255.0 - paper, 1.0), 0, 1)


def without_lines(mask: np.ndarray) -> np.ndarray:
    """``mask`` without printed lines (thin runs across most of the image, across or down), kept
    where a stroke crosses a line (ink on both sides of it)."""
    from scipy import ndimage

    lines = np.zeros_like(mask)
    for axis in (1, 0):  # 1: lines across the image (runs along its rows), 0: lines down it
        length = mask.shape[axis]
        run = max(2, round(LINE_RUN * length))
        # An opening by a straight run, as two 1-D filters (time independent of the run's length).
        candidates = ndimage.maximum_filter1d(ndimage.minimum_filter1d(mask.view(np.uint8), run, axis=axis),
                                              run, axis=axis).astype(bool)
        labels, count = ndimage.label(candidates, structure=np.ones((3, 3)))
        for index, found in enumerate(ndimage.find_objects(labels), start=1):
            if found[axis].stop - found[axis].start >= LINE_SPAN * length:
                lines |= labels == index
    if not lines.any():
        return mask
    kept = mask & ~lines
    # A stroke crossing a line: ink just above and below (left and right of) the line's pixels.
    thickness = max(2, int(np.ceil(lines.sum() / max(1, np.count_nonzero(lines.any(axis=0)))) * 2 + 2))
    bridged = ndimage.binary_closing(kept, structure=np.ones((thickness, 1), dtype=bool)) | \
        ndimage.binary_closing(kept, structure=np.ones((1, thickness), dtype=bool))
    return kept | (bridged & lines)


def digit_parts(mask: np.ndarray, amount: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """The pixels of the digit in ``mask``: its heaviest connected part (by ink) and the parts
    near it of some weight; with the doubts this choice leaves."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return mask, ()
    weights = ndimage.sum_labels(amount, labels, index=np.arange(1, count + 1))
    boxes = ndimage.find_objects(labels)
    heaviest = int(np.argmax(weights))
    main = boxes[heaviest]
    reach = PART_GAP * max(main[0].stop - main[0].start, main[1].stop - main[1].start)
    kept, doubts = [heaviest], []
    for index in np.argsort(-weights):
        if index == heaviest or weights[index] < PART_WEIGHT * weights[heaviest]:
            continue
        if _gap(boxes[index], main) <= reach:
            kept.append(int(index))
        elif weights[index] >= RIVAL_WEIGHT * weights[heaviest]:
            doubts.append("another mark of similar weight lies apart from the digit (two digits?)")
    digit = np.isin(labels, np.array(kept) + 1)
    rows, columns = np.nonzero(digit)
    square = float(max(np.ptp(rows), np.ptp(columns)) + 1) ** 2
    if digit.sum() > FULL_BOX * square:
        doubts.append(f"ink covers {digit.sum() / square:.0%} of the digit's square (a blot, not a stroke?)")
    if rows.min() == 0 or columns.min() == 0 or rows.max() == mask.shape[0] - 1 or \
            columns.max() == mask.shape[1] - 1:
        doubts.append("the digit touches the image's edge (cut off?)")
    return digit, tuple(dict.fromkeys(doubts))


def _gap(box, other) -> float:
    """The distance in pixels between two bounding boxes (0 when they overlap)."""
    gaps = [max(0, box[axis].start - other[axis].stop, other[axis].start - box[axis].stop) for axis in (0, 1)]
    return float(np.hypot(*gaps))


def _reduced(grey: np.ndarray, factor: int) -> np.ndarray:
    """``grey`` averaged over blocks of factor x factor pixels (the remainder cut)."""
    if factor == 1:
        return grey
    rows, columns = (side // factor * factor for side in grey.shape)
    return grey[:rows, :columns].reshape(rows // factor, factor, columns // factor, factor).mean(axis=(1, 3))
