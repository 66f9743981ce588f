"""The test images' representations for TensorBoard's Projector (`mnist-lab visualize`), to be
explored in the browser: `tensorboard --logdir results/tensorboard`, then the Projector tab.

The root of the TensorBoard tree (event_logs.FOLDER) holds, per source, its features (raw
pixels, the MLP's or the CNN's hidden layer; the Projector runs its own PCA, t-SNE or UMAP on
them) and each 2-D map mnist-lab drew of it, as float32 tensors; the digits' labels as
metadata; a sprite of the digits themselves; and the projector_config.pbtxt that names them.
The Projector reads a config at the root of its logdir without an event file there, so the
export is not listed as a run among the trainings. It lists the tensors by name and opens on
the first (checked in a browser): each name starts with its rank, so the features come first,
then the maps, in the order of SOURCES and METHODS. A map is written with a third column of zeros: the Projector has no view of a
2-column tensor (its PCA shows an empty canvas), while of (x, y, 0) its PCA shows the map
itself, turned at most. Tensor files are named by the digest of what they hold, so an unchanged
source is not written again.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mnist_lab.core.describe import METHODS, SOURCES
from mnist_lab.core.files import atomic_path, atomic_write_png, write_if_changed

CONFIG = "projector_config.pbtxt"
METADATA = "labels.tsv"
SPRITE = "sprite.png"
_TENSOR_SUFFIX = ".float32"


def listed_name(source: str, method, words: str) -> str:
    """The name the Projector shows for ``source``'s features (``method`` None) or its map by
    ``method``: ``words`` after a rank that sorts as the list should read (a fixed rank per
    source and method, so a partial export keeps its place beside an earlier one)."""
    if method is None:
        rank = 1 + SOURCES.index(source)
    else:
        rank = 1 + len(SOURCES) + SOURCES.index(source) * len(METHODS) + METHODS.index(method)
    return f"{rank} {words}"


def _rank(name: str) -> int:
    """The rank a listed_name starts with; 0 for a name without one."""
    first = name.split(" ", 1)[0]
    return int(first) if first.isdigit() else 0


def tensor_file(name: str, key: str) -> str:
    return f"{name}-{key[:12]}{_TENSOR_SUFFIX}"


def export(folder: Path, images: np.ndarray, labels: np.ndarray, tensors: list) -> list[Path]:
    """Write the Projector's files for ``tensors``, a list of (name shown in the Projector, file
    name from tensor_file, a callable giving the n x d array: called only when the file is
    missing). Tensors an earlier call exported of the same images stay (a partial
    `visualize --sources raw` adds to the export); files no entry names are removed. Returns
    the paths written."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    labels_text = "".join(f"{label}\n" for label in labels)  # one column: no header (the Projector's rule)
    sprite = sprite_image(images)
    config = projector_config_pb2.ProjectorConfig()
    names = {name for name, _, _ in tensors}
    if _read(folder / METADATA) == labels_text and _same_image(folder / SPRITE, sprite):
        earlier = projector_config_pb2.ProjectorConfig()
        text_format.Parse(_read(folder / CONFIG) or "", earlier)
        for embedding in earlier.embeddings:
            # (a name without a rank is an older version's: its tensor is made again under the new name)
            if (embedding.tensor_name not in names and _rank(embedding.tensor_name)
                    and (folder / embedding.tensor_path).is_file()):
                config.embeddings.add().CopyFrom(embedding)
    for name, file_name, values in tensors:
        path = folder / file_name
        if not path.exists():
            array = np.ascontiguousarray(values(), dtype=np.float32)
            with atomic_path(path) as temporary:
                temporary.write_bytes(array.tobytes())
            written.append(path)
        embedding = config.embeddings.add()
        embedding.tensor_name, embedding.tensor_path, embedding.metadata_path = name, file_name, METADATA
        embedding.tensor_shape.extend([len(labels), path.stat().st_size // 4 // len(labels)])
        embedding.sprite.image_path = SPRITE
        embedding.sprite.single_image_dim.extend(images.shape[1:3])
    ordered = sorted(config.embeddings, key=lambda embedding: _rank(embedding.tensor_name))
    del config.embeddings[:]
    config.embeddings.extend(ordered)
    kept = {embedding.tensor_path for embedding in config.embeddings}
    for stale in folder.glob(f"*{_TENSOR_SUFFIX}"):
        if stale.name not in kept:
            stale.unlink()
    for path, text in ((folder / METADATA, labels_text), (folder / CONFIG, text_format.MessageToString(config))):
        if write_if_changed(path, text):
            written.append(path)
    if not _same_image(folder / SPRITE, sprite):
        atomic_write_png(sprite, folder / SPRITE)
        written.append(folder / SPRITE)
    return written


def viewable_map(points: np.ndarray) -> np.ndarray:
    """A 2-D map as the Projector can show it: (x, y, 0)."""
    return np.column_stack([points, np.zeros(len(points), dtype=points.dtype)])


def sprite_image(images: np.ndarray) -> np.ndarray:
    """The images in one square grid, row by row (the Projector's sprite), light digits on black."""
    side = math.ceil(math.sqrt(len(images)))
    height, width = images.shape[1:3]
    grid = np.zeros((side * height, side * width), dtype=np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, side)
        grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return grid


def _read(path: Path):
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _same_image(path: Path, pixels: np.ndarray) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array_equal(np.asarray(image), pixels)
    except (OSError, ValueError):
        return False

