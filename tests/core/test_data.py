import functools
import hashlib
import http.server
import threading
import zipfile

import numpy as np
import pytest

from mnist_lab.core import data
from mnist_lab.core.config import DataConfig
from mnist_lab.core.errors import DataError, IntegrityError

from conftest import write_idx, write_idx_folder


def load(path):
    return data.load_dataset(DataConfig(path=str(path)))


def test_shipped_mnist_is_the_real_thing(mnist):
    assert mnist.x_train.shape == (60000, 28, 28) and mnist.x_test.shape == (10000, 28, 28)
    assert mnist.x_train.dtype == np.uint8
    # LAB.md's sanity facts, an oracle independent of our digests.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist.is_mnist and mnist.source == "builtin"


def test_idx_digest_is_the_digest_of_the_idx_file(tmp_path, mnist):
    written = write_idx(tmp_path / "t10k-labels-idx1-ubyte", mnist.y_test)
    assert hashlib.sha256(written.read_bytes()).hexdigest() == data.idx_sha256(mnist.y_test)
    assert data.idx_sha256(mnist.y_test) == data.MNIST_SHA256["y_test"]


def test_damaged_shipped_copy_is_refused(tmp_path, monkeypatch, tiny_arrays, mnist):
    damaged = tmp_path / "mnist.npz"
    monkeypatch.setattr(data, "shipped_path", lambda: damaged)
    np.savez_compressed(damaged, **tiny_arrays)
    with pytest.raises(IntegrityError, match=r"x_train has shape \(50, 28, 28\) uint8, expected \(60000, 28, 28\)"):
        data.load_builtin()
    flipped = mnist.x_test.copy()
    flipped[0, 0, 0] ^= 1
    np.savez(damaged, x_train=mnist.x_train, y_train=mnist.y_train.astype(np.uint8), x_test=flipped,
             y_test=mnist.y_test.astype(np.uint8))
    with pytest.raises(IntegrityError, match="x_test digest .* differs from the recorded"):
        data.load_builtin()
    damaged.write_bytes(b"not a zip")
    with pytest.raises(IntegrityError, match="shipped MNIST is damaged: .*not a readable .npz"):
        data.load_builtin()


def test_npz_and_idx_folders_load_the_same_arrays(tmp_path, tiny_arrays):
    np.savez(tmp_path / "tiny.npz", **tiny_arrays)
    from_npz = load(tmp_path / "tiny.npz")
    from_raw = load(write_idx_folder(tmp_path / "raw", tiny_arrays))
    from_gzip = load(write_idx_folder(tmp_path / "gz", tiny_arrays, compress=True))
    for dataset in (from_npz, from_raw, from_gzip):
        for key in data.SPLITS:
            np.testing.assert_array_equal(getattr(dataset, key), tiny_arrays[key])
        assert not dataset.is_mnist
    assert from_raw.sha256 == from_npz.sha256 == from_gzip.sha256
    assert from_npz.source == str(tmp_path / "tiny.npz")
    assert from_raw.describe() == f"{tmp_path / 'raw'} (not the MNIST digits): 50 training / 20 test images"


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_npz_arrays_are_read_as_numpy_reads_them_into_page_aligned_memory(tmp_path, tiny_arrays, save):
    """Any layout NumPy writes (Fortran order, big-endian, the 2.0 header) reads as np.load reads it;
    the images start on a page, so the backend can share them (training/tensors.py)."""
    written = {**tiny_arrays, "x_test": np.asfortranarray(tiny_arrays["x_test"]),
               "y_train": tiny_arrays["y_train"].astype(">i4")}
    save(tmp_path / "layouts.npz", **written)
    with np.load(tmp_path / "layouts.npz") as archive:
        expected = {key: archive[key] for key in data.SPLITS}
    arrays, _ = data._read_npz(tmp_path / "layouts.npz")
    for key in data.SPLITS:
        assert arrays[key].dtype == expected[key].dtype and arrays[key].shape == expected[key].shape
        np.testing.assert_array_equal(arrays[key], expected[key])
    assert arrays["x_train"].ctypes.data % 4096 == 0 and arrays["x_train"].flags.c_contiguous
    with zipfile.ZipFile(tmp_path / "version2.npz", "w") as archive:
        for key, array in tiny_arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                np.lib.format.write_array(member, array, version=(2, 0))
    np.testing.assert_array_equal(load(tmp_path / "version2.npz").x_train, tiny_arrays["x_train"])


def test_an_npz_header_announcing_more_than_its_member_holds_is_refused_before_allocating(tmp_path, tiny_arrays):
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, array in tiny_arrays.items():
            with archive.open(f"{key}.npy", "w") as member:
                header = {"descr": "|u1", "fortran_order": False, "shape": (10**12, 28, 28)} if key == "x_train" else None
                if header:
                    np.lib.format.write_array_header_1_0(member, header)
                    member.write(array.tobytes())
                else:
                    np.lib.format.write_array(member, array)
    with pytest.raises(DataError, match=rf"^{path}: not a readable .npz archive .*x_train.npy: its header announces "
                                        r"784,000,000,000,000 bytes of data, more than the member holds"):
        load(path)
    np.savez(tmp_path / "objects.npz", **{**tiny_arrays, "y_test": np.array([1, "two"], dtype=object)})
    with pytest.raises(DataError, match=r"objects.npz: not a readable .npz archive .*y_test.npy: holds Python objects"):
        load(tmp_path / "objects.npz")


def test_grey_levels_in_other_dtypes_are_accepted(tmp_path, tiny_arrays):
    np.savez(tmp_path / "f.npz", **{**tiny_arrays, "x_train": tiny_arrays["x_train"].astype(np.float64),
                                    "y_test": tiny_arrays["y_test"].astype(np.int32)})
    dataset = load(tmp_path / "f.npz")
    assert dataset.x_train.dtype == np.uint8 and dataset.y_test.dtype == np.int64
    np.testing.assert_array_equal(dataset.x_train, tiny_arrays["x_train"])


@pytest.mark.parametrize("change, message", [
    ({"x_train": np.zeros((5, 28, 27), np.uint8)}, r"x_train: expected images of shape \(N, 28, 28\)"),
    ({"y_test": np.zeros(19, np.uint8)}, r"x_test has 20 images but .*y_test has 19 labels"),
    ({"y_train": np.full(50, 10, np.uint8)}, r"y_train: expected labels 0..9, got values from 10 to 10"),
    ({"y_train": np.zeros(50, np.float32)}, r"y_train: expected integer labels, got dtype float32"),
    ({"x_test": np.full((20, 28, 28), 0.5)}, r"x_test: expected grey levels, whole numbers in 0..255"),
    ({"x_test": np.full((20, 28, 28), 300, np.int32)}, r"x_test: expected grey levels"),
    ({"x_test": np.full((20, 28, 28), np.nan)}, r"x_test: expected grey levels, .* and NaN or inf"),
    ({"x_train": (np.arange(50 * 784).reshape(50, 28, 28) % 2).astype(np.float32)},
     r"x_train: float32 pixels only take the values 0 and 1: data already scaled to \[0, 1\] or binarised"),
    ({"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.uint8)},
     r"x_train: expected images of shape \(N, 28, 28\) with N >= 1, got shape \(0, 28, 28\)"),
    ({"y_train": np.zeros((50, 1), np.uint8)}, r"y_train: expected a non-empty vector of labels, got shape \(50, 1\)"),
    ({"x_train": np.array(["a"] * 50 * 784).reshape(50, 28, 28)}, r"x_train: expected uint8 pixels, got dtype <U1"),
])
def test_malformed_npz_names_file_and_array(tmp_path, tiny_arrays, change, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **{**tiny_arrays, **change})
    with pytest.raises(DataError, match=f"^{path}: .*{message}" if "has 20" not in message else message):
        load(path)


def test_npz_missing_keys_or_junk(tmp_path, tiny_arrays):
    np.savez(tmp_path / "partial.npz", x_train=tiny_arrays["x_train"], y_train=tiny_arrays["y_train"])
    with pytest.raises(DataError, match=r"partial.npz: missing array\(s\) x_test, y_test; expected the Keras keys"):
        load(tmp_path / "partial.npz")
    (tmp_path / "junk.npz").write_bytes(b"\x00junk" * 100)
    with pytest.raises(DataError, match=r"junk.npz: not a readable .npz archive"):
        load(tmp_path / "junk.npz")
    with pytest.raises(DataError, match=r"nowhere: no such file or folder \(expected an .npz file or a folder"):
        load(tmp_path / "nowhere")


def test_idx_errors_name_the_file(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", tiny_arrays)
    images = folder / data.IDX_FILES["x_train"]
    images.write_bytes(b"\x00\x00\x08\x01" + images.read_bytes()[4:])
    with pytest.raises(DataError, match=f"{images}: wrong magic number 0x00000801, expected 0x00000803"):
        load(folder)
    write_idx(images, tiny_arrays["x_train"])
    images.write_bytes(images.read_bytes()[:-7])
    with pytest.raises(DataError, match=rf"{images}: header announces shape \(50, 28, 28\) \(39,200 bytes"
                                        r" of data\), file holds 39,193: truncated"):
        load(folder)
    images.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match=f"{images}: truncated: 2 bytes"):
        load(folder)
    images.unlink()
    with pytest.raises(DataError, match=f"{folder}: missing IDX file\\(s\\) train-images-idx3-ubyte \\(raw or .gz\\)"):
        load(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: cannot read"):
        load(folder)


def test_mismatched_idx_counts(tmp_path, tiny_arrays):
    folder = write_idx_folder(tmp_path / "idx", {**tiny_arrays, "y_train": tiny_arrays["y_train"][:49]})
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte has 50 images but .*train-labels-idx1-ubyte has 49"):
        load(folder)


@pytest.mark.parametrize("model_type, shape", [("logreg", (30, 784)), ("mlp", (30, 784)), ("cnn", (30, 28, 28, 1))])
def test_prepare_scales_shapes_and_one_hots(mnist, model_type, shape):
    prepared = data.prepare(mnist, model_type, train_limit=30, test_limit=10)
    inputs = prepared.train_inputs()
    assert prepared.train_images.dtype == np.uint8 and np.shares_memory(prepared.train_images, mnist.x_train)
    assert inputs.shape == shape and inputs.dtype == np.float32
    assert prepared.x_test.shape == (10, *shape[1:])
    assert 0.0 <= inputs.min() and inputs.max() == 1.0
    np.testing.assert_allclose(inputs.reshape(30, -1)[0] * 255, mnist.x_train[0].reshape(-1), atol=1e-4)
    assert (prepared.train_inputs([3, 1]) == inputs[[3, 1]]).all()
    assert prepared.y_train.shape == (30, 10) and (prepared.y_train.argmax(1) == mnist.y_train[:30]).all()
    assert (prepared.y_train.sum(1) == 1).all()
    assert prepared.test_labels.tolist() == mnist.y_test[:10].tolist()


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_keras_source_downloads_once_then_uses_the_cache(tmp_path, tiny_arrays, local_server):
    root, base = local_server
    np.savez(root / "mnist.npz", **tiny_arrays)
    digest = hashlib.sha256((root / "mnist.npz").read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    cache.mkdir()  # Keras falls back to /tmp/.keras for a cache folder that does not exist
    path = data.fetch_keras_npz(f"{base}/mnist.npz", digest, cache_dir=str(cache))
    assert path == cache / "datasets" / "mnist.npz" and load(path).y_test.tolist() == tiny_arrays["y_test"].tolist()
    (root / "mnist.npz").unlink()  # the server no longer has it: the cache must serve
    assert data.fetch_keras_npz(f"{base}/mnist.npz", digest, cache_dir=str(cache)) == path
    with pytest.raises(RuntimeError, match=f"data.source keras: could not get {base}/absent.npz"):
        data.fetch_keras_npz(f"{base}/absent.npz", digest, cache_dir=str(cache))


def test_an_idx_header_announcing_an_impossible_size_is_refused(tmp_path):
    """4 dimensions of 2**32 - 1: a product no int64 holds; refused, not overflowed."""
    import struct

    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(struct.pack(">HBB3I", 0, 8, 3, 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\x00" * 16)
    with pytest.raises(DataError, match=r"header announces shape \(4294967295, 4294967295, 4294967295\) "
                                        r"\(79,228,162,458,924,105,385,300,197,375 bytes of data\), file holds 16"):
        data.read_idx(path, ndim=3)


def test_unscaled_inputs_keep_the_grey_levels(mnist):
    from mnist_lab.core.data import prepare

    scaled, unscaled = prepare(mnist, "cnn", 50, 20), prepare(mnist, "cnn", 50, 20, scaled=False)
    assert scaled.train_inputs().max() == 1.0 and unscaled.train_inputs().max() == 255.0
    np.testing.assert_array_equal(unscaled.train_inputs() / 255, scaled.train_inputs())


def test_a_validation_split_is_one_fixed_draw_nested_and_apart_from_the_training_rows():
    held = data.validation_rows(60000, 6000)
    assert np.array_equal(held, data.validation_rows(60000, 6000))  # no seed in it: the same every time
    assert len(np.unique(held)) == 6000 and held.min() >= 0 and held.max() < 60000
    assert set(data.validation_rows(60000, 600).tolist()) < set(held.tolist())  # a larger count holds out more
    rest = data.training_rows(60000, 6000)
    assert len(rest) == 54000 and not set(rest.tolist()) & set(held.tolist())
    assert np.array_equal(np.sort(np.concatenate([rest, held])), np.arange(60000))
    assert np.all(np.diff(rest) > 0)  # in their order in the data: train_limit takes the first of them
    # Spread over the whole file, not its end (MNIST's order is not random enough to trust).
    assert np.histogram(held, bins=6, range=(0, 60000))[0].min() > 800
    for count in (0, 60000):
        with pytest.raises(DataError, match="data.validation"):
            data.validation_rows(60000, count)


def test_prepare_holds_the_validation_images_out_of_training(mnist):
    arrays = data.prepare(mnist, "mlp", train_limit=500, test_limit=100, validation=300)
    held, rest = data.validation_rows(60000, 300), data.training_rows(60000, 300)
    assert np.array_equal(arrays.train_images, mnist.x_train[rest[:500]].reshape(500, 784))
    assert np.array_equal(arrays.x_validation, mnist.x_train[held].reshape(300, 784) / np.float32(255))
    assert np.array_equal(arrays.y_validation.argmax(axis=1), mnist.y_train[held])
    # No image trained on is a validation image (compared by content, not only by index).
    trained = {image.tobytes() for image in arrays.train_images}
    assert not trained & {image.tobytes() for image in mnist.x_train[held].reshape(300, 784)}
    assert mnist.record(500, 100, 300)["train_images"] == 500
    assert mnist.record(None, None, 300)["train_images"] == 59700
    whole = data.prepare(mnist, "mlp", train_limit=500)
    assert whole.x_validation is None and np.shares_memory(whole.train_images, mnist.x_train)
