"""Digits on paper as a phone or a scanner gives them, generated from MNIST test digits (seeded):
the conditions `mnist-lab predict` must read, each a function of (digit, random generator).

A digit becomes a pen stroke by enlarging it (bicubic, 3-5x) and sharpening its edge; it is put,
off-centre, on a page that is larger than it. Paper and ink are grey levels (0 black, 255 white);
light falls on both (a shadow darkens ink and paper alike); the camera adds noise and JPEG.

    clean    white paper, dark ink, a little blur and noise
    noisy    grey paper, sensor noise (sigma 10-16 levels), a few dark specks, JPEG quality 70
    shadow   light falling off across the page (to 30-45 %), along a ramp or a soft shadow edge
    ruled    ruled paper: grey lines across the page every 0.3-0.45 digit heights, slightly tilted,
             sometimes a margin line
    marker   a thick marker: strokes a fifth to a quarter of the digit's height wide
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy import ndimage

CONDITIONS = ("clean", "noisy", "shadow", "ruled", "marker")


def stroke(digit: np.ndarray, height: int) -> np.ndarray:
    """The digit as ink cover 0-1, ``height`` pixels tall, with a pen's sharper edge than MNIST's."""
    grown = np.asarray(Image.fromarray(digit).resize((height, height), Image.Resampling.BICUBIC), dtype=float)
    return np.clip((grown / 255 - 0.25) * 2.5, 0, 1)


def page(cover: np.ndarray, random: np.random.Generator, paper: float, ink: float) -> tuple[np.ndarray, tuple]:
    """``cover`` placed off-centre on a page 1.5-2.2 times its size: grey levels, and the corner."""
    height, width = (int(side * random.uniform(1.5, 2.2)) for side in cover.shape)
    top = random.integers(0, height - cover.shape[0] + 1)
    left = random.integers(0, width - cover.shape[1] + 1)
    grey = np.full((height, width), paper)
    cover_on_page = np.zeros((height, width))
    cover_on_page[top:top + cover.shape[0], left:left + cover.shape[1]] = cover
    return grey * (1 - cover_on_page) + ink * cover_on_page, (top, left)


def photographed(grey: np.ndarray, random: np.random.Generator, noise: float, quality: int) -> Image.Image:
    """A camera's view of ``grey``: a slight blur, sensor noise, JPEG."""
    grey = ndimage.gaussian_filter(grey, random.uniform(0.5, 1.0))
    grey = grey + random.normal(0, noise, grey.shape)
    image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def clean(digit, random):
    grey, _ = page(stroke(digit, random.integers(80, 140)), random, random.uniform(225, 250), random.uniform(20, 60))
    return photographed(grey, random, noise=2, quality=92)


def noisy(digit, random):
    cover = stroke(digit, random.integers(80, 140))
    grey, _ = page(cover, random, random.uniform(140, 185), random.uniform(35, 70))
    for _ in range(random.integers(2, 7)):  # dust: dark specks of 1-3 pixels
        row, column = random.integers(0, grey.shape[0] - 3), random.integers(0, grey.shape[1] - 3)
        size = random.integers(1, 4)
        grey[row:row + size, column:column + size] = random.uniform(40, 90)
    return photographed(grey, random, noise=random.uniform(10, 16), quality=70)


def shadow(digit, random):
    grey, _ = page(stroke(digit, random.integers(80, 140)), random, random.uniform(220, 245), random.uniform(20, 50))
    rows, columns = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    angle = random.uniform(0, 2 * np.pi)
    along = np.cos(angle) * columns + np.sin(angle) * rows
    along = (along - along.min()) / (along.max() - along.min())  # 0-1 across the page
    darkest = random.uniform(0.3, 0.45)
    if random.random() < 0.5:  # a ramp: light falling off across the page
        light = 1 - (1 - darkest) * along
    else:  # a soft shadow edge somewhere across the page, as of a hand or a phone
        edge = random.uniform(0.3, 0.7)
        light = 1 - (1 - darkest) / (1 + np.exp(-(along - edge) / random.uniform(0.02, 0.08)))
    return photographed(grey * light, random, noise=4, quality=85)


def ruled(digit, random):
    height = random.integers(80, 140)
    grey, _ = page(stroke(digit, height), random, random.uniform(225, 245), random.uniform(20, 60))
    rows, columns = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    spacing = height * random.uniform(0.3, 0.45)
    tilt = np.tan(np.radians(random.uniform(-1, 1)))
    thickness = random.uniform(1, 3)
    line_grey = random.uniform(130, 185)
    distance = np.abs((rows - columns * tilt - random.uniform(0, spacing)) % spacing - spacing / 2)
    lines = np.clip(thickness / 2 + 0.5 - distance, 0, 1)  # anti-aliased lines, thickness pixels wide
    if random.random() < 0.4:  # a margin line down the page
        margin = random.integers(3, max(4, grey.shape[1] // 6))
        lines = np.maximum(lines, np.clip(thickness / 2 + 0.5 - np.abs(columns - margin), 0, 1))
    # The lines are printed under the ink: where both lie, the ink's grey shows.
    ink_cover = np.clip((grey.max() - grey) / (grey.max() - grey.min()), 0, 1)
    grey = grey * (1 - lines * (1 - ink_cover)) + line_grey * lines * (1 - ink_cover)
    return photographed(grey, random, noise=3, quality=85)


def marker(digit, random):
    height = random.integers(80, 140)
    cover = stroke(digit, height)
    # MNIST's strokes are about a tenth of the digit's height wide (the digit is 20 of the
    # frame's 28 pixels): widened by 0.05-0.075 digit heights on each side, they become a fifth
    # to a quarter.
    grown = height * 20 / 28 * random.uniform(0.05, 0.075)
    cover = (ndimage.distance_transform_edt(cover < 0.5) <= grown).astype(float)
    cover = ndimage.gaussian_filter(cover, 1.0)
    grey, _ = page(cover, random, random.uniform(225, 250), random.uniform(15, 45))
    return photographed(grey, random, noise=3, quality=85)


MAKERS = {"clean": clean, "noisy": noisy, "shadow": shadow, "ruled": ruled, "marker": marker}


def paper_digits(digits: np.ndarray, condition: str, seed: int) -> list[Image.Image]:
    """Each digit of ``digits`` (MNIST 28 x 28 uint8) on paper of ``condition``, seeded."""
    random = np.random.default_rng([seed, CONDITIONS.index(condition)])
    return [MAKERS[condition](digit, random) for digit in digits]
