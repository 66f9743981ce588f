import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_lab import cli
from mnist_lab.analysis import predict
from mnist_lab.core.config import load_config
from mnist_lab.core.errors import UsageError
from mnist_lab.core.output import Output, silent

from conftest import ROOT
from paper_digits import CONDITIONS, paper_digits

DIGITS = 200  # test digits rendered as files


@pytest.fixture(scope="module")
def runs(tmp_path_factory, mnist):
    """A small Keras CNN and NumPy MLP, trained as `mnist-lab train` trains them."""
    from mnist_lab.training.run import train

    results = tmp_path_factory.mktemp("results")
    found = {}
    for name, overrides in (("cnn", ["training.epochs=2", "training.batch_size=50", "training.learning_rate=0.1",
                                     "model.conv_activation=relu"]),
                            ("mlp-numpy", ["training.epochs=3", "training.batch_size=50"])):
        config = load_config(ROOT / "configs" / f"{name}.yaml", ["data.train_limit=4000", *overrides], environ={})
        found[name] = train(config, name, results, output=Output(log=silent, progress=False), dataset=mnist).run_dir
    return found


def _render(digit: np.ndarray, size: int, canvas: tuple, dark_ink: bool) -> Image.Image:
    """An MNIST digit drawn at another size, aspect kept, on a larger canvas of either polarity."""
    grown = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    page = Image.new("L", canvas, 0)
    page.paste(grown, ((canvas[0] - size) // 2, (canvas[1] - size) // 3))
    return Image.fromarray(255 - np.asarray(page)) if dark_ink else page


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, mnist):
    """The first DIGITS test digits as files: PNGs three times larger with dark ink on light paper,
    and JPEGs at 50 x 50 in an 80 x 64 frame, light on dark."""
    folder = tmp_path_factory.mktemp("digits")
    paths = []
    for index, digit in enumerate(mnist.x_test[:DIGITS]):
        if index % 2:
            path = folder / f"{index}.png"
            _render(digit, 84, (100, 120), dark_ink=True).save(path)
        else:
            path = folder / f"{index}.jpg"
            _render(digit, 50, (80, 64), dark_ink=False).save(path, quality=95)
        paths.append(path)
    return paths


@pytest.mark.parametrize("run", ["cnn", "mlp-numpy"])
def test_predictions_on_rendered_files_agree_with_the_original_arrays(runs, rendered, mnist, run):
    classifier = predict.Classifier.of_run(runs[run])
    on_arrays = classifier.probabilities(mnist.x_test[:DIGITS]).argmax(axis=1)
    on_files = np.array([answer.digits[0][0] for answer in predict.answers(classifier, rendered)])
    agreement = (on_files == on_arrays).mean()
    assert agreement >= 0.95, agreement
    assert (on_arrays == mnist.y_test[:DIGITS]).mean() > 0.8  # a model that learned something


PAPER_DIGITS = 30  # test digits per paper condition


@pytest.mark.parametrize("condition", CONDITIONS)
def test_digits_on_paper_read_as_the_clean_digits(runs, mnist, condition):
    """On noisy grey paper, under a shadow, on ruled paper, in thick marker, the model reads what
    it reads in the clean 28 x 28 digit (counting every pixel darker than a fifth of the contrast
    as ink, it read 10-25 % of the noisy, shadowed and ruled pages). This small model agrees on
    91-97 % of 300 digits per condition; the lab's CNN on 1,000: bench/predict_paper.py."""
    classifier = predict.Classifier.of_run(runs["cnn"])
    digits = mnist.x_test[-PAPER_DIGITS:]
    on_arrays = classifier.probabilities(digits).argmax(axis=1)
    seen = np.stack([predict.mnist_like(read, condition).image for read in
                     map(predict.read_grey_image, paper_digits(digits, condition, seed=5))])
    agreement = (classifier.probabilities(seen).argmax(axis=1) == on_arrays).mean()
    assert agreement >= 0.8, agreement


def _mass(image):
    return np.array([image.sum(axis=1) @ np.arange(28), image.sum(axis=0) @ np.arange(28)]) / image.sum()


def test_an_mnist_digit_comes_back_as_it_was_centred_by_mass(mnist):
    from scipy import ndimage

    digit = mnist.x_test[0].astype(float)
    centred = ndimage.shift(digit, 14 - _mass(digit), order=1)  # MNIST's own centre is within half a pixel
    for grey in (digit, 255.0 - digit):  # either polarity
        again = predict.mnist_like(grey, "digit").image.astype(float)
        assert np.corrcoef(again.ravel(), centred.ravel())[0, 1] > 0.99
        rows, columns = np.nonzero(again > 10)
        assert max(rows.max() - rows.min(), columns.max() - columns.min()) + 1 in (predict.BOX, predict.BOX + 1)
        assert np.abs(_mass(again) - 14).max() < 0.05


def test_images_with_no_digit_or_no_image_are_named(tmp_path):
    Image.new("L", (30, 40), 200).save(tmp_path / "blank.png")
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(UsageError) as error:
        predict.prepared([tmp_path / "blank.png", tmp_path / "notes.png", tmp_path / "folder.png",
                          tmp_path / "missing.png"])
    assert str(error.value).splitlines() == [
        f"{tmp_path / 'blank.png'}: no digit found (no ink stands out from the paper around it: 0 grey levels at "
        f"most, at least 26 expected)",
        f"{tmp_path / 'notes.png'}: not an image (expected PNG, JPEG or another format Pillow reads)",
        f"{tmp_path / 'folder.png'}: is a folder, expected an image file",
        f"{tmp_path / 'missing.png'}: no such file"]


def test_a_dark_area_wider_than_the_paper_window_is_named_as_such():
    grey = np.full((100, 100), 230.0)
    grey[5:95, 5:95] = 40  # wider than the closing that finds the paper: it is paper in shadow
    assert predict.paper_window(grey.shape) == 60
    with pytest.raises(UsageError, match="a dark area wider than 60 pixels is taken for paper in shadow"):
        predict.mnist_like(grey, "square")


def test_a_transparent_drawing_is_read_as_ink_on_white_paper(mnist):
    ink = np.zeros((28, 28, 4), dtype=np.uint8)
    ink[..., 3] = mnist.x_test[0]  # black strokes whose alpha is the digit
    grey = predict.read_grey_image(Image.fromarray(ink))
    assert grey[0, 0] == 255 and np.corrcoef(255 - grey.ravel(), mnist.x_test[0].ravel())[0, 1] > 0.99


def test_show_names_never_collide():
    assert predict.seen_names(["a/7.png", "b/7.jpg", "c/1.png"]) == ["7-1.28x28.png", "7-2.28x28.png",
                                                                      "1.28x28.png"]
    names = predict.seen_names(["a/7.png", "b/7.png", "7-1.png", "c/7-1.jpg", "7-2.png"])
    assert len(set(names)) == len(names) == 5


def test_the_predict_command(runs, rendered, tmp_path):
    run = runs["cnn"]
    result = CliRunner().invoke(cli.main, ["predict", str(run), str(rendered[1]), str(rendered[2]),
                                           "--show", str(tmp_path / "seen"), "--format", "json"])
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)
    assert [answer["image"] for answer in answers] == [str(rendered[1]), str(rendered[2])]
    for answer in answers:
        probabilities = [guess["probability"] for guess in answer["predictions"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
    seen = Image.open(tmp_path / "seen" / "1.28x28.png")
    assert seen.size == (28, 28) and seen.mode == "L"
    by_key = CliRunner().invoke(cli.main, ["predict", run.name, str(rendered[1]), "--results", str(run.parents[1])])
    assert by_key.exit_code == 0 and by_key.output.startswith(f"{rendered[1]}: ")
    assert by_key.output.count("%") == 3


def test_csv_the_polarity_the_threshold_and_doubts(runs, mnist, tmp_path):
    import csv
    import io

    light = tmp_path / "light.png"
    _render(mnist.x_test[1], 84, (100, 120), dark_ink=True).save(light)
    blot = tmp_path / "blot.png"
    page = np.full((100, 100), 240, dtype=np.uint8)
    page[35:65, 35:65] = 30
    Image.fromarray(page).save(blot)
    result = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(light), str(blot), "--format", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["image"] for row in rows] == [str(light), str(blot)]
    assert list(rows[0]) == ["image", "digit_1", "probability_1", "digit_2", "probability_2", "digit_3",
                             "probability_3", "doubtful"]
    assert rows[0]["doubtful"] == "" and "blot" in rows[1]["doubtful"]
    text = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(blot)])
    assert " - doubtful: ink covers " in text.output
    told = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(light), "--invert", "--format", "json"])
    guessed = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(light), "--format", "json"])
    assert json.loads(told.output) == json.loads(guessed.output)
    # Told the wrong polarity, the paper around the digit is read as ink: a different image.
    wrong = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(light), "--no-invert", "--show",
                                          str(tmp_path / "wrong"), "--format", "json"])
    right = predict.prepared([light])[0].image
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "wrong" / "light.28x28.png")), right)
    assert wrong.exit_code == 0
    faint = tmp_path / "faint.png"  # pencil: the ink takes at most half the paper's light
    Image.fromarray((255 - (255 - np.asarray(Image.open(light))) // 2).astype(np.uint8)).save(faint)
    assert CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(faint), "--threshold", "0.4"]).exit_code == 0
    too_high = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(faint), "--threshold", "0.6"])
    assert too_high.exit_code == 2 and "no ink reaches the threshold 0.60" in too_high.output
    for wrong in ("2", "0", "nan"):
        out_of_range = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(light), "--threshold", wrong])
        assert out_of_range.exit_code == 2 and out_of_range.output.startswith("Error: --threshold ")
        assert len(out_of_range.output.splitlines()) == 1, out_of_range.output
    as_run = CliRunner().invoke(cli.main, ["predict", str(light), str(light)])
    assert as_run.exit_code == 2 and as_run.output == f"Error: {light}: a file, not a run folder (mnist-lab runs --where kind=run lists them)\n"


def test_a_name_with_a_newline_or_an_escape_prints_on_one_line(runs, rendered, tmp_path):
    import shutil

    hostile = tmp_path / "seven\n\x1b[31mred.png"
    shutil.copy(rendered[1], hostile)
    result = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(hostile)])
    assert result.exit_code == 0 and result.output.count("\n") == 1 and "\x1b" not in result.output


def test_bad_runs_are_one_line_and_exit_2(runs, rendered, tmp_path):
    missing = CliRunner().invoke(cli.main, ["predict", str(tmp_path / "nope"), str(rendered[0])])
    assert missing.exit_code == 2 and missing.output == (
        f"Error: {tmp_path / 'nope'}: no such run folder (mnist-lab runs --where kind=run lists them)\n")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    no_model = CliRunner().invoke(cli.main, ["predict", str(empty), str(rendered[0])])
    assert no_model.exit_code == 2 and no_model.output.startswith(f"Error: {empty}: not a complete run with a model")
    bad_image = CliRunner().invoke(cli.main, ["predict", str(runs["cnn"]), str(tmp_path / "x.png")])
    assert bad_image.exit_code == 2 and bad_image.output == f"Error: {tmp_path / 'x.png'}: no such file\n"


@pytest.mark.parametrize("name, model_file", [("cnn", "model.keras"), ("mlp-numpy", "model.npz")])
def test_a_damaged_model_file_is_named_as_damaged(runs, rendered, tmp_path, name, model_file):
    import shutil

    copy = tmp_path / runs[name].name
    shutil.copytree(runs[name], copy)
    (copy / model_file).write_bytes((copy / model_file).read_bytes()[:700])  # truncated
    result = CliRunner().invoke(cli.main, ["predict", str(copy), str(rendered[0])])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {copy / model_file}: damaged, the model cannot be loaded (")
    assert "File not found" not in result.output and len(result.output.splitlines()) == 1


def test_a_16_bit_image_is_read_as_its_8_bit_twin(mnist, tmp_path):
    """Pillow's convert("L") clips 16-bit grey levels (only pure black would stay ink): they are
    scaled instead, so the two files give the model the same 28x28 image."""
    page = np.asarray(_render(mnist.x_test[0], 84, (100, 120), dark_ink=True))
    Image.fromarray(page).save(tmp_path / "eight.png")
    Image.fromarray(page.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    assert Image.open(tmp_path / "sixteen.png").mode.startswith("I")
    eight, sixteen = (image.image for image in predict.prepared([tmp_path / "eight.png", tmp_path / "sixteen.png"]))
    assert np.array_equal(eight, sixteen) and eight.max() > 200


def test_a_fifo_or_a_huge_bitmap_is_neither_waited_on_nor_expanded(tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(UsageError, match="pipe.png: not a regular file"):
        predict.read_grey(tmp_path / "pipe.png")
    Image.new("1", (12000, 12000), 1).save(tmp_path / "huge.png")  # 42 KB on disk, 144 M pixels
    assert max(predict.read_grey(tmp_path / "huge.png").shape) <= predict.IMAGE_SIDE
