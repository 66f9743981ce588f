import numpy as np
import pytest

from mnist_lab.analysis import paper
from mnist_lab.analysis.predict import read_grey_image

from paper_digits import CONDITIONS, paper_digits


def _between_class_variance(values, threshold):
    below, above = values[values < threshold], values[values >= threshold]
    if not len(below) or not len(above):
        return -1.0
    return len(below) * len(above) * (below.mean() - above.mean()) ** 2


@pytest.mark.parametrize("seed", range(4))
def test_otsu_threshold_is_the_largest_between_class_variance_found_by_brute_force(seed):
    random = np.random.default_rng(seed)
    # Paper and ink of random shares and spreads, quantised to the histogram's bin centres.
    share = random.uniform(0.02, 0.5)
    values = np.r_[random.normal(random.uniform(0, 0.3), 0.05, int(4000 * (1 - share))),
                   random.normal(random.uniform(0.5, 0.9), 0.1, int(4000 * share))]
    values = (np.floor(np.clip(values, 0, 1 - 1e-9) * 256) + 0.5) / 256
    edges = np.arange(1, 256) / 256
    best = edges[np.argmax([_between_class_variance(values, edge) for edge in edges])]
    assert paper.otsu_threshold(values) == pytest.approx(best)


@pytest.fixture(scope="module")
def pages(mnist):
    """Eight digits on each kind of paper, as grey levels."""
    return {condition: [read_grey_image(image) for image in paper_digits(mnist.x_test[:8], condition, seed=11)]
            for condition in CONDITIONS}


def test_the_polarity_is_told_on_every_paper_and_its_negative(pages, mnist):
    for condition, greys in pages.items():
        assert all(paper.dark_ink(grey) for grey in greys), condition
        if condition != "shadow":  # a lit page's negative is a board in light, not in a shadow
            assert not any(paper.dark_ink(255 - grey) for grey in greys), condition
    assert not any(paper.dark_ink(digit.astype(float)) for digit in mnist.x_test[:50])  # MNIST's own


def test_a_digit_cropped_tight_keeps_its_strokes(mnist):
    """No paper beyond the edges: the frame of paper keeps the strokes ink, the edge-to-edge bar of
    a 7 and stem of a 1 are not taken for printed lines, and half ink is still dark ink."""
    from PIL import Image

    from mnist_lab.analysis.predict import mnist_like

    for digit in mnist.x_test[:40]:
        rows, columns = np.nonzero(digit > 30)
        crop = digit[rows.min():rows.max() + 1, columns.min():columns.max() + 1]
        page = 255 - np.asarray(Image.fromarray(crop).resize((crop.shape[1] * 4, crop.shape[0] * 4),
                                                             Image.Resampling.BICUBIC), dtype=float)
        again = mnist_like(page, "crop")
        assert np.corrcoef(again.image.ravel(), digit.ravel())[0, 1] > 0.8
        assert any("edge" in doubt for doubt in again.doubts)


def test_the_ink_is_the_same_under_a_shadow(mnist):
    """Light falling off to a third darkens ink and paper alike: the ink found is the same."""
    grey = np.full((120, 100), 235.0)
    digit = np.kron(mnist.x_test[0], np.ones((3, 3))) / 255
    grey[20:104, 8:92] = grey[20:104, 8:92] * (1 - 0.85 * digit)
    light = np.linspace(1, 0.33, grey.shape[1])[None, :]
    even, shaded = paper.separate(grey), paper.separate(grey * light)
    overlap = (even.digit & shaded.digit).sum() / (even.digit | shaded.digit).sum()
    assert overlap > 0.9, overlap


def test_a_line_across_the_image_is_removed_and_a_stroke_crossing_it_kept():
    mask = np.zeros((80, 120), dtype=bool)
    mask[40:42, :] = True  # a printed line, 2 pixels, across the whole image
    mask[20:60, 50:57] = True  # a pen's stroke crossing it
    mask[10:16, 20:70] = True  # a digit's bar: long, but not across the image
    kept = paper.without_lines(mask)
    assert not kept[40:42, :45].any() and not kept[40:42, 60:].any()
    assert kept[20:60, 50:57].all() and kept[10:16, 20:70].all()
    bar = np.zeros((80, 120), dtype=bool)
    bar[10:16, :] = True  # a 7 cropped tight: its bar runs edge to edge, as thick as its stem
    bar[10:80, 100:106] = True
    assert np.array_equal(paper.without_lines(bar), bar)


def test_specks_are_left_out_and_a_detached_part_kept():
    mask = np.zeros((100, 100), dtype=bool)
    mask[20:80, 40:45] = True  # the digit's stem
    mask[14:17, 38:60] = True  # its detached bar, a few pixels above
    mask[90:92, 5:7] = True  # a speck
    digit, doubts = paper.digit_parts(mask, mask.astype(float))
    assert digit[20:80, 40:45].all() and digit[14:17, 38:60].all() and not digit[90:92, 5:7].any()
    assert doubts == ()


def test_two_marks_of_a_weight_far_apart_are_doubtful():
    mask = np.zeros((100, 200), dtype=bool)
    mask[20:80, 30:36] = True
    mask[20:80, 160:165] = True
    digit, doubts = paper.digit_parts(mask, mask.astype(float))
    assert digit[:, :100].any() and not digit[:, 100:].any()
    assert any("another mark" in doubt for doubt in doubts)


def test_a_blot_and_a_digit_cut_off_are_doubtful():
    blot = np.zeros((60, 60), dtype=bool)
    blot[10:50, 12:48] = True
    assert any("blot" in doubt for doubt in paper.digit_parts(blot, blot.astype(float))[1])
    cut = np.zeros((60, 60), dtype=bool)
    cut[0:40, 28:33] = True
    assert any("edge" in doubt for doubt in paper.digit_parts(cut, cut.astype(float))[1])


def test_a_markers_strokes_are_thinned_to_a_pens_and_a_pens_left_alone():
    rows, columns = np.mgrid[0:200, 0:200]
    ring = np.hypot(rows - 100, columns - 100)
    for width, thinned in ((50, True), (22, False)):  # shares 0.31 and 0.14 of the ring's size
        digit = np.abs(ring - 60) <= width / 2
        ink = paper.thinned(paper.Ink(digit * 0.8, digit, 0.3))
        assert (paper.stroke_width(ink.digit) < paper.stroke_width(digit)) == thinned
        if thinned:
            assert paper.stroke_width(ink.digit) == pytest.approx(paper.PEN, abs=0.03)
