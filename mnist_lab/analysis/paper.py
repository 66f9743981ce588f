"""Ink told apart from paper, as document tools do it, for `mnist-lab predict`.

A photo of a digit is paper lit unevenly (a shadow, a gradient), with sensor noise, specks,
printed lines, and ink of any width. Counting every pixel darker than a share of the contrast as
ink fails on all of these: the shadow, a line or one speck stretches the digit's box to the whole
image. Instead:

1. the polarity: dark ink on light paper or light ink on dark, from which side of the local
   median the strong departures lie (or as the user says);
2. the paper's own grey level at every pixel, by a morphological closing (an opening for light
   ink on dark paper) wider than any stroke, over the image in a frame of its own paper (a
   digit cropped tight has none beyond its edges): it follows a shadow's ramp and its edge,
   and the ink is how much of the paper's light a pixel absorbs, so a shadow scales both alike;
3. a threshold on that ink: Otsu's (between-class variance), or the user's;
4. printed lines removed by their shape (straight runs from edge to edge, thinner than the
   strokes: not a tight crop's 7 bar), restored where a stroke crosses them;
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
FRAME = 0.25  # share of the image's longer side added as paper around it before the paper is estimated
SMOOTHING = 1.0  # pixels (Gaussian sigma): sensor noise averaged before the ink is thresholded
PAPER_WINDOW = 0.4  # share of the framed image's shorter side: the closing is wider than any stroke
POLARITY_SIDE = 96  # pixels: the polarity is judged on a thumbnail this large
# Light ink needs departures above the local median this many times those below (log2 of the ratio
# measured: dark ink on generated paper -5.3 to -0.5, tight crops of dark digits up to +0.8; light
# ink: MNIST's own digits from +1.2, negatives of generated paper from +0.5, of noisy paper +1.0).
LIGHT_INK = 2.0
LINE_EDGE = 0.02  # a printed line runs from edge to edge of the image (within this share of its side)
LINE_RUN = 0.3  # ... in straight runs of at least this share (a 1-degree tilt breaks longer ones)
LINE_THIN = 0.6  # ... and they are thinner than this share of the strokes left (printed lines are fine, pens not)
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
    """Whether ``grey`` holds dark ink on light paper: the departures from the local median below
    it are at least 1 / LIGHT_INK of those above. A shadow's edge departs both ways, ink one way.
    A digit cropped tight is half ink, and then the two sides come close: paper is taken to be
    the lighter unless the departures above are LIGHT_INK times those below."""
    from scipy import ndimage

    factor = max(1, -(-max(grey.shape) // POLARITY_SIDE))
    thumbnail = _reduced(grey, factor)
    window = max(3, min(thumbnail.shape) // 3)
    median = ndimage.median_filter(thumbnail, window, mode="nearest")
    darker = median - ndimage.minimum_filter(thumbnail, window, mode="nearest")
    lighter = ndimage.maximum_filter(thumbnail, window, mode="nearest") - median
    return bool(lighter.sum() < LIGHT_INK * darker.sum())


def separate(grey: np.ndarray, dark: bool | None = None, threshold: float | None = None) -> Ink:
    """The ink of ``grey`` (grey levels 0-255), dark on light paper when ``dark`` (guessed when
    None); ``threshold`` (0-1) overrides Otsu's."""
    from scipy import ndimage

    if dark is None:
        dark = dark_ink(grey)
    # A frame of paper around the image: a digit cropped tight has no paper beyond its edges, and
    # the closing would take its strokes there for paper (a 1's stem, the whole digit).
    frame = _frame(grey.shape)
    inside = (slice(frame, frame + grey.shape[0]), slice(frame, frame + grey.shape[1]))
    framed = np.pad(_paper_edges(grey, dark), frame, mode="edge")
    framed[inside] = grey
    window = paper_window(grey.shape)
    amount = ink_amount(framed, dark, window)[inside]
    smooth = ink_amount(ndimage.gaussian_filter(framed, SMOOTHING), dark, window)[inside]
    level = max(MIN_CONTRAST, otsu_threshold(smooth)) if threshold is None else threshold
    mask = without_lines(smooth >= level)
    digit, doubts = digit_parts(mask, smooth)
    return thinned(Ink(amount, digit, level, doubts))


def _paper_edges(grey: np.ndarray, dark: bool) -> np.ndarray:
    """``grey`` with each edge row and column replaced by the paper along it: the lightest (for
    dark ink) grey within FRAME of its length, so that extending the edges outwards continues the
    paper (and its shadow), not a stroke that reaches the edge."""
    from scipy import ndimage

    edged = grey.copy()
    spread = ndimage.maximum_filter1d if dark else ndimage.minimum_filter1d
    for index in (0, -1):
        edged[index, :] = spread(grey[index, :], max(1, round(FRAME * grey.shape[1])), mode="nearest")
        edged[:, index] = spread(grey[:, index], max(1, round(FRAME * grey.shape[0])), mode="nearest")
    return edged


def stroke_width(digit: np.ndarray) -> float:
    """The mean width of the strokes in ``digit`` as a share of its size."""
    return _stroke_pixels(digit) / _size(digit)


def _size(digit: np.ndarray) -> int:
    """The larger side in pixels of the box around ``digit``'s pixels."""
    rows, columns = np.nonzero(digit)
    return int(max(np.ptp(rows), np.ptp(columns))) + 1


def _stroke_pixels(ink: np.ndarray) -> float:
    """The mean width in pixels of the strokes in ``ink``: twice the area over the outline's
    length (a stroke of width w and length l: 2 w l / 2 l)."""
    from scipy import ndimage

    outline = np.count_nonzero(ink & ~ndimage.binary_erosion(ink, border_value=0))
    return 2 * np.count_nonzero(ink) / max(outline, 1)


def thinned(ink: Ink) -> Ink:
    """``ink`` with strokes wider than MNIST's (a marker's) eroded evenly to MNIST's median
    width (a marker's stroke is about as wide everywhere), so the model sees a pen's digit."""
    from scipy import ndimage

    if not ink.digit.any():
        return ink
    width = stroke_width(ink.digit)
    if width <= THICK:
        return ink
    depth = (width - PEN) * _size(ink.digit) / 2  # pixels taken off each side of a stroke
    distance = ndimage.distance_transform_edt(ink.digit)
    # The new edge drawn soft over one pixel; its grey the ink's own.
    cover = np.clip(distance - depth, 0, 1)
    return Ink(cover * np.percentile(ink.amount[ink.digit], 90), distance > depth, ink.threshold, ink.doubts)


def paper_window(shape) -> int:
    """The width in pixels of the closing that estimates the paper of an image of ``shape``:
    PAPER_WINDOW of the framed image's shorter side, wider than a tight crop's strokes."""
    return max(3, round(PAPER_WINDOW * (min(shape) + 2 * _frame(shape))))


def _frame(shape) -> int:
    """The width in pixels of the frame of paper put around an image of ``shape``."""
    return max(2, round(FRAME * max(shape)))


def ink_amount(grey: np.ndarray, dark: bool, window: int) -> np.ndarray:
    """How much of the paper's light each pixel absorbs (dark ink) or adds (light ink), 0-1, the
    paper's grey level estimated at every pixel by a closing (opening) ``window`` pixels wide."""
    from scipy import ndimage

    if dark:
        paper = ndimage.grey_closing(grey, size=window, mode="nearest")
        return np.clip((paper - grey) / np.maximum(paper, 1.0), 0, 1)
    paper = ndimage.grey_opening(grey, size=window, mode="nearest")
    return np.clip((grey - paper) / np.maximum(255.0 - paper, 1.0), 0, 1)


def without_lines(mask: np.ndarray) -> np.ndarray:
    """``mask`` without printed lines: straight runs from one edge of the image to the other,
    across it (ruled paper), then down it (a margin), each set taken out only when thinner than
    LINE_THIN of the largest stroke it leaves (in a tight crop a 1's stem or a 7's bar runs edge
    to edge too: it is the digit), and put back where a stroke crosses a line (ink on both sides)."""
    from scipy import ndimage

    for axis in (1, 0):  # 1: runs along the rows (lines across the image), 0: down the columns
        lines, thickness = _edge_to_edge_runs(mask, axis)
        kept = mask & ~lines
        if not lines.any() or thickness > LINE_THIN * _stroke_pixels(_largest_part(kept)):
            continue  # the "lines" are as thick as the strokes left (or nothing is left): the digit's own
        across = (thickness + 2, 1) if axis == 1 else (1, thickness + 2)
        mask = kept | (ndimage.binary_closing(kept, structure=np.ones(across, dtype=bool)) & lines)
    return mask


def _largest_part(mask: np.ndarray) -> np.ndarray:
    """The largest connected part of ``mask`` (all False when it is empty): the strokes whose width
    a line is compared with, not the line's own leftover fringes."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count == 0:
        return mask
    return labels == 1 + int(np.argmax(ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))))


def _edge_to_edge_runs(mask: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
    """The pixels of ``mask`` in straight runs along ``axis`` at least LINE_RUN of the image long
    that together reach from one edge to the other (a line tilted a little is a chain of such
    runs), and the thickest such line's thickness in pixels."""
    from scipy import ndimage

    length = mask.shape[axis]
    run = max(2, round(LINE_RUN * length))
    margin = max(2, round(LINE_EDGE * length))
    # An opening by a straight run, as two 1-D filters (time independent of the run's length).
    candidates = ndimage.maximum_filter1d(ndimage.minimum_filter1d(mask.view(np.uint8), run, axis=axis),
                                          run, axis=axis).astype(bool)
    labels, _ = ndimage.label(candidates, structure=np.ones((3, 3)))
    lines, thickness = np.zeros_like(mask), 1
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found[axis].start <= margin and found[axis].stop >= length - margin:
            line = labels == index
            lines |= line
            thickness = max(thickness, int(np.ceil(np.count_nonzero(line) / (found[axis].stop - found[axis].start))))
    return lines, thickness


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
    square = float(_size(digit)) ** 2
    if digit.sum() > FULL_BOX * square:
        doubts.append(f"ink covers {digit.sum() / square:.0%} of the digit's square (a blot, not a stroke?)")
    rows, columns = np.nonzero(digit)
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
