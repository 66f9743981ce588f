"""MNIST-format data: the shipped verified copy, .npz files, IDX folders, Keras's download.

Every source goes through the same validation; every error names the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zipfile
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from mnist_lab.core.errors import DataError, IntegrityError

SPLITS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
# SHA-256 of each array written as an uncompressed IDX file, i.e. of the
# original MNIST files (LAB.md lists the same digests), so any copy, whatever
# its container, can be recognised as MNIST.
MNIST_SHA256 = {
    "x_train": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "y_train": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "x_test": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "y_test": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,),
                "x_test": (10000, 28, 28), "y_test": (10000,)}
KERAS_MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28)
_IDX_UBYTE = 0x08
# Arrays a backend may share rather than copy start on a page: TensorFlow takes memory it does
# not own only when it is 64-byte aligned (NumPy aligns large arrays to 16 bytes), and a copy is
# not free where memory is backed at its first touch (docs/performance.md, "Fresh memory").
_PAGE = 4096
# The one draw that picks a validation split's images (validation_rows): a constant, so the
# held-out images depend on nothing but their count and the data's size.
VALIDATION_DRAW = 20_260_101
# What each epoch of a training with a validation split records on the held-out images, beside
# the test set's numbers; its result record holds the last epoch's.
VALIDATION_FIELDS = ("validation_loss", "validation_accuracy")
_TRAINING_COUNTS = {}  # the files' stamp -> their training images (training_image_count)
_READ_CHUNK = 1 << 18  # bytes read from an archive at a time, as NumPy's own reader does


@dataclass(frozen=True, eq=False)
class Dataset:
    """Raw images (uint8, N x 28 x 28) and labels (int64, 0..9), with provenance."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "builtin", "keras", or the path the user gave
    sha256: dict  # digest of each array in IDX form

    @property
    def is_mnist(self) -> bool:
        return self.sha256 == MNIST_SHA256

    def describe(self) -> str:
        name = {"builtin": "shipped MNIST", "keras": "Keras's MNIST download"}.get(self.source, self.source)
        check = "verified MNIST" if self.is_mnist else "not the MNIST digits"
        return (f"{name} ({check}): {len(self.y_train):,} training / "
                f"{len(self.y_test):,} test images")

    @property
    def digest(self) -> str:
        """One digest of the whole content: what identifies this data in results."""
        return content_digest(self.sha256)

    def record(self, train_limit=None, test_limit=None, validation=None) -> dict:
        """What results store about the data they were made from: the whole dataset's
        digests, and how many of its images (the first N) were used; with a validation split,
        how many training images it holds out (``validation_rows``: never trained on)."""
        record = {"source": self.source, "verified_mnist": self.is_mnist, "digest": self.digest,
                  "train_images": len(training_rows(len(self.y_train), validation)[:train_limit]),
                  "test_images": len(self.y_test[:test_limit]),
                  "train_limit": train_limit, "test_limit": test_limit, "sha256": dict(self.sha256)}
        if validation is not None:
            record.update(validation=validation, validation_images=validation)
        return record


@dataclass(frozen=True, eq=False)
class Prepared:
    """Model-ready arrays: one-hot labels, test inputs in float32 (scaled to [0, 1] unless not
    ``scaled``) and the training images as grey levels, shaped for the model and converted as
    they are used (``train_inputs``): one uint8 copy of 60,000 images is 47 MB where float32
    is 188 MB, and converting per batch gives the same bits (x / 255 is one correctly rounded
    float32 division either way)."""

    train_images: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_labels: np.ndarray
    divisor: np.float32  # 255, or 1 for a config that trains on grey levels as they are
    x_validation: np.ndarray | None = None  # the held-out training images (data.validation), as x_test
    y_validation: np.ndarray | None = None

    def train_inputs(self, rows=slice(None)) -> np.ndarray:
        """The training inputs of ``rows`` (all by default) as the model takes them."""
        return to_inputs(self.train_images[rows], self.divisor)


def content_digest(array_digests: dict) -> str:
    """SHA-256 over the four arrays' IDX digests, in a fixed order."""
    return hashlib.sha256("\n".join(array_digests[key] for key in SPLITS).encode()).hexdigest()


MNIST_DIGEST = content_digest(MNIST_SHA256)


def load_dataset(data_config) -> Dataset:
    """Load and validate the dataset a DataConfig names."""
    if data_config.path is not None:
        return load_path(data_config.path)
    if downloads_with_keras(data_config):
        dataset = _dataset(*_read_npz(fetch_keras_npz()), source="keras")
        if not dataset.is_mnist:  # Keras checks the archive's hash; this checks what it holds
            raise IntegrityError("Keras's mnist.npz does not hold the MNIST digits; delete it from "
                                 "~/.keras/datasets/ and run again")
        return dataset
    return load_builtin()


def downloads_with_keras(data_config) -> bool:
    """Whether load_dataset gets this data through Keras's download (which imports Keras)."""
    return data_config.path is None and data_config.source == "keras"


def load_path(path) -> Dataset:
    """The dataset in an .npz file or IDX folder, validated."""
    return _dataset(*_read_path(Path(path).expanduser()), source=str(path))


def source_files(path) -> list[Path]:
    """The files a data path reads (an .npz, or the four IDX files), without reading them."""
    path = Path(path).expanduser()
    if path.is_dir():
        return list(_idx_files(path).values())
    if path.is_file():
        return [path]
    problem = "not a regular file or folder" if path.exists() else "no such file or folder"
    raise DataError(f"{path}: {problem} (expected an .npz file or a folder holding the four MNIST IDX files)")


def load_builtin() -> Dataset:
    """The MNIST copy shipped in the package, checked against its recorded digests."""
    path = shipped_path()
    try:
        arrays, origins = _read_npz(path)
    except DataError as error:
        raise IntegrityError(f"shipped MNIST is damaged: {error}; reinstall mnist-lab") from None
    wrong = [f"{key} has shape {arrays[key].shape} {arrays[key].dtype}, expected {shape} uint8"
             for key, shape in MNIST_SHAPES.items()
             if arrays[key].shape != shape or arrays[key].dtype != np.uint8]
    dataset = None if wrong else _dataset(arrays, origins, source="builtin")
    if dataset is not None and not dataset.is_mnist:
        wrong = [f"{key} digest {digest[:12]}… differs from the recorded {MNIST_SHA256[key][:12]}…"
                 for key, digest in dataset.sha256.items() if digest != MNIST_SHA256[key]]
    if wrong:
        raise IntegrityError(f"shipped MNIST is damaged ({path}): {'; '.join(wrong)}; reinstall mnist-lab")
    return dataset


def shipped_path() -> Path:
    return Path(str(resources.files("mnist_lab") / "resources" / "mnist.npz"))


def fetch_keras_npz(url=KERAS_MNIST_URL, sha256=KERAS_MNIST_SHA256, cache_dir=None) -> Path:
    """Download (once; then from Keras's cache) the Keras-format MNIST archive.

    The same file, digest and cache as ``keras.datasets.mnist.load_data()``;
    the URL is a parameter so tests can serve it from 127.0.0.1.
    """
    import keras

    try:
        return Path(keras.utils.get_file(fname=Path(url).name, origin=url,
                                         file_hash=sha256, cache_dir=cache_dir))
    except Exception as error:  # get_file raises bare Exception on network errors
        raise RuntimeError(f"data.source keras: could not get {url}: {error}") from None


def idx_sha256(array: np.ndarray) -> str:
    """SHA-256 of the array as an unsigned-byte IDX file (header + raw bytes)."""
    header = struct.pack(f">HBB{array.ndim}I", 0, _IDX_UBYTE, array.ndim, *array.shape)
    digest = hashlib.sha256(header)
    digest.update(np.ascontiguousarray(array, dtype=np.uint8).data)
    return digest.hexdigest()


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (raw or .gz) with ``ndim`` dimensions."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: cannot read: {error}") from None
    expected_magic = (_IDX_UBYTE << 8) | ndim
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated: {len(data)} bytes, shorter than the "
                        f"{header_size}-byte IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
                        f"(unsigned-byte IDX with {ndim} dimension{'s' if ndim > 1 else ''})")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    size = math.prod(shape)  # Python integers: a forged header cannot overflow the check
    if len(data) - header_size != size:
        raise DataError(f"{path}: header announces shape {shape} ({size:,} bytes of data), "
                        f"file holds {len(data) - header_size:,}: truncated or not IDX")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def prepare(dataset: Dataset, model_type: str, train_limit=None, test_limit=None, scaled=True,
            validation=None) -> Prepared:
    """Hold out ``validation`` training images (validation_rows), take the first ``train_limit``
    of the rest and of the test images, shape for the model, one-hot the labels; test and
    validation inputs in float32 (see Prepared)."""
    y_test = dataset.y_test[:test_limit]
    if validation is None:  # the first N images themselves: a view, no copy
        train_images, y_train = dataset.x_train[:train_limit], dataset.y_train[:train_limit]
        held_out = {}
    else:
        rows = training_rows(len(dataset.y_train), validation)[:train_limit]
        train_images, y_train = dataset.x_train[rows], dataset.y_train[rows]
        kept = validation_rows(len(dataset.y_train), validation)
        held_out = {"x_validation": model_inputs(dataset.x_train[kept], model_type, scaled),
                    "y_validation": one_hot(dataset.y_train[kept])}
    return Prepared(train_images=shaped(train_images, model_type), y_train=one_hot(y_train),
                    x_test=model_inputs(dataset.x_test[:test_limit], model_type, scaled),
                    y_test=one_hot(y_test), test_labels=y_test, divisor=divisor_of(scaled), **held_out)


def validation_rows(size: int, count: int) -> np.ndarray:
    """The rows of the ``count`` training images a validation split holds out of ``size``, in
    increasing order: a draw fixed once for all (VALIDATION_DRAW, not the config's seed), so
    every seed and every config with the same count is evaluated on the same images; a larger
    count holds out these and more."""
    if not 1 <= count < size:
        raise DataError(f"data.validation: expected 1 to {size - 1:,} of the {size:,} training images, got {count:,}")
    return np.sort(np.random.default_rng(VALIDATION_DRAW).permutation(size)[:count])


def training_rows(size: int, validation=None) -> np.ndarray:
    """The rows left to train on, in their order in the data (train_limit takes the first N)."""
    if validation is None:
        return np.arange(size)
    return np.setdiff1d(np.arange(size), validation_rows(size, validation), assume_unique=True)


def training_image_count(path) -> int:
    """How many training images the data at ``path`` holds (None: MNIST, shipped or downloaded);
    read once per version of its files in a process (every trial of a search resolves its data)."""
    if path is None:
        return MNIST_SHAPES["y_train"][0]
    stamp = tuple((str(file.resolve()), file.stat().st_size, file.stat().st_mtime_ns) for file in source_files(path))
    if stamp not in _TRAINING_COUNTS:
        _TRAINING_COUNTS[stamp] = len(load_path(path).y_train)
    return _TRAINING_COUNTS[stamp]


def model_inputs(images: np.ndarray, model_type: str, scaled=True) -> np.ndarray:
    """Images as the model takes them: 784-vectors for dense models, 28x28x1 for the CNN; grey
    levels divided by 255 (``scaled``, the lab's) or as they are, 0-255."""
    images = shaped(images, model_type)
    # Whole arrays into page-aligned memory, which the backend then shares (training/tensors.py).
    return to_inputs(images, divisor_of(scaled), out=empty_aligned(images.shape, np.float32))


def shaped(images: np.ndarray, model_type: str) -> np.ndarray:
    """Images in the model's layout (a view, not a copy): 784-vectors or 28x28x1."""
    if model_type == "cnn":
        return images.reshape(len(images), *IMAGE_SHAPE, 1)
    return images.reshape(len(images), -1)


def divisor_of(scaled: bool) -> np.float32:
    return np.float32(255 if scaled else 1)


def to_inputs(images: np.ndarray, by: np.float32, out=None) -> np.ndarray:
    """Grey levels as float32 inputs: the one conversion, whole arrays or batches (one correctly
    rounded float32 division, into ``out`` where given)."""
    return np.divide(images, by, dtype=np.float32, out=out)


def empty_aligned(shape, dtype) -> np.ndarray:
    """An uninitialised C-ordered array starting on a page, which a backend can use without a copy."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    raw = np.empty(size + _PAGE, dtype=np.uint8)
    start = -raw.ctypes.data % _PAGE
    return raw[start:start + size].view(dtype).reshape(shape)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The order of the ``size`` training images in epoch ``epoch`` (counted from 0), drawn from
    (seed, epoch) alone: a training resumed at any epoch sees the orders of one never stopped,
    and both engines see the same ones."""
    return np.random.default_rng([seed, epoch]).permutation(size)


def _read_path(path: Path):
    files = source_files(path)
    return _read_idx_folder(path) if path.is_dir() else _read_npz(files[0])


def _read_npz(path: Path):
    """Arrays of a Keras-layout .npz and, for each, the place to name in errors."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}  # np.load's keys
            missing = [key for key in SPLITS if key not in members]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)}; expected the "
                                f"Keras keys {', '.join(SPLITS)}, found {', '.join(members) or 'none'}")
            arrays = {key: _read_npy(archive, members[key]) for key in SPLITS}
    except DataError:
        raise
    except MemoryError:
        raise DataError(f"{path}: its arrays are too large for this machine's memory") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{path}: not a readable .npz archive of MNIST arrays ({error})") from None
    return arrays, {key: f"{path}: {key}" for key in SPLITS}


def _read_npy(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """One .npy member, as np.load reads it (no pickles), but into page-aligned memory (see
    empty_aligned): the images are then shared with the backend, not copied once more."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{member}: .npy format version {version} is not supported")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
        if dtype.hasobject:
            raise ValueError(f"{member}: holds Python objects, not numbers")
        size = math.prod(shape) * dtype.itemsize
        if size > archive.getinfo(member).file_size:  # before allocating what a forged header announces
            raise ValueError(f"{member}: its header announces {size:,} bytes of data, more than the member holds")
        array = empty_aligned(shape[::-1] if fortran_order else shape, dtype)
        buffer, filled = memoryview(array.reshape(-1).view(np.uint8)), 0
        while filled < size:
            count = stream.readinto(buffer[filled:filled + _READ_CHUNK])
            if not count:
                raise ValueError(f"{member}: truncated: {filled:,} of {size:,} bytes of data")
            filled += count
    return array.T if fortran_order else array


def _idx_files(folder: Path) -> dict:
    found, missing = {}, []
    for key, name in IDX_FILES.items():
        candidates = [folder / name, folder / f"{name}.gz"]
        path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if path is None:
            missing.append(name)
        found[key] = path
    if missing:
        raise DataError(f"{folder}: missing IDX file(s) {', '.join(missing)} (raw or .gz)")
    return found


def _read_idx_folder(folder: Path):
    found = _idx_files(folder)
    arrays = {key: read_idx(path, ndim=3 if key.startswith("x") else 1) for key, path in found.items()}
    return arrays, {key: str(path) for key, path in found.items()}


def _dataset(arrays, origins, source) -> Dataset:
    checked = {}
    for split in ("train", "test"):
        images, labels = f"x_{split}", f"y_{split}"
        checked[images] = _checked_images(arrays[images], origins[images])
        checked[labels] = _checked_labels(arrays[labels], origins[labels])
        if len(checked[images]) != len(checked[labels]):
            raise DataError(f"{origins[images]} has {len(checked[images]):,} images but "
                            f"{origins[labels]} has {len(checked[labels]):,} labels")
    return Dataset(**checked, source=source,
                   sha256={key: idx_sha256(checked[key]) for key in SPLITS})


def _checked_images(images: np.ndarray, origin: str) -> np.ndarray:
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE or len(images) == 0:
        raise DataError(f"{origin}: expected images of shape (N, 28, 28) with N >= 1, "
                        f"got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iuf":
        raise DataError(f"{origin}: expected uint8 pixels, got dtype {images.dtype}")
    # Non-uint8 pixels must still be grey levels 0..255: data already scaled
    # to [0, 1] would otherwise be divided by 255 a second time.
    with np.errstate(invalid="ignore"):
        whole = bool(np.isfinite(images).all() and (images >= 0).all() and (images <= 255).all()
                     and (images == np.round(images)).all())
    if not whole:
        finite = images[np.isfinite(images)]
        values = f"values from {finite.min()} to {finite.max()}" if finite.size else "no finite values"
        raise DataError(f"{origin}: expected grey levels, whole numbers in 0..255, got {images.dtype} {values}"
                        + ("" if finite.size == images.size else ", and NaN or inf"))
    # Float images holding only 0.0 and 1.0 are binarised or already scaled data, not
    # grey levels: as 0..255 they would be near-black images that train silently badly.
    if images.dtype.kind == "f" and images.max() <= 1:
        raise DataError(f"{origin}: {images.dtype} pixels only take the values 0 and 1: data already scaled "
                        f"to [0, 1] or binarised; save grey levels 0..255 as uint8 (np.uint8(x * 255))")
    return images.astype(np.uint8)


def _checked_labels(labels: np.ndarray, origin: str) -> np.ndarray:
    if labels.ndim != 1 or len(labels) == 0:
        raise DataError(f"{origin}: expected a non-empty vector of labels, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{origin}: expected integer labels, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataError(f"{origin}: expected labels 0..{NUM_CLASSES - 1}, got values from "
                        f"{labels.min()} to {labels.max()}")
    return labels.astype(np.int64)
