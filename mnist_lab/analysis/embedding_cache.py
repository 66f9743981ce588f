"""The cache of computed maps (DIR/embeddings/cache): each (source, method) map's points and
measures, keyed by everything they are computed from, so a second `visualize` only redraws."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time

import numpy as np

from mnist_lab.analysis.embeddings import OPENTSNE_EXAGGERATION_ITERATIONS, embed_points
from mnist_lab.analysis.measures import separability
from mnist_lab.analysis.separability import SEPARABILITY_FIELDS
from mnist_lab.core.describe import EMBEDDING_METHODS, METHODS, SOURCES
from mnist_lab.core.files import atomic_path, atomic_write_text, read_bounded
from mnist_lab.core.schema import NUMBER, wrong_fields
from mnist_lab.results import store


def embedding(representation, method, labels, settings, seed, folder, progress, log):
    """The cached 2-D points and measures of one (source, method), computing what is missing
    (or damaged) in the cache."""
    parameters = _parameters(method, settings, seed)
    key = json_digest({"representation": representation.key, "parameters": parameters})
    cache = folder / store.EMBEDDINGS_CACHE_FOLDER / f"{representation.source}_{method}_{key}"
    points_file, measures_file = cache.with_suffix(".npy"), cache.with_suffix(".json")
    if points_file.exists() or measures_file.exists():
        cached = _read_cache_entry(points_file, measures_file, len(labels))
        if cached is not None:
            log(f"{representation.source} {EMBEDDING_METHODS[method]}: cached ({points_file.name})")
            return cached
        log(f"Warning: damaged cache entry {cache}.npy/.json, recomputed")
    started = time.perf_counter()
    features = representation.features()
    with _EmbeddingProgress(f"{representation.source} {EMBEDDING_METHODS[method]} ({representation.dimensions})",
                            method, settings, progress, log) as bar:
        points = embed_points(features, method, settings, seed, progress=bar.update)
    measures = separability(features, points, labels, seed)
    measures["seconds"] = time.perf_counter() - started
    with atomic_path(points_file) as temporary:
        with open(temporary, "wb") as stream:
            np.save(stream, points)
    # What the entry was computed from, so the separability table can merge entries of earlier runs.
    origin = {"source": representation.source, "method": method, "points": len(labels),
              "images": representation.images, "parameters": parameters}
    atomic_write_text(measures_file, json.dumps({**measures, "origin": origin}, indent=1) + "\n")
    return points, measures


def _parameters(method, settings, seed) -> dict:
    return {"method": method, "seed": seed, **(dataclasses.asdict(settings) if method == "tsne" else {})}


# A cache entry's measures: the separability columns after source, method and points.
_MEASURES = dict.fromkeys(SEPARABILITY_FIELDS[3:], NUMBER)


def _read_cache_entry(points_file, measures_file, count):
    """(points, measures) of a cache entry, or None when either file is missing or damaged."""
    try:
        points = np.load(io.BytesIO(read_bounded(points_file)), allow_pickle=False)
        measures = json.loads(read_bounded(measures_file))
    except (OSError, ValueError, EOFError):
        return None
    if points.shape != (count, 2) or not np.isfinite(points).all() or wrong_fields(measures, _MEASURES):
        return None
    return points, {name: measures[name] for name in _MEASURES}


def cached_rows(folder, rows, images_digest, settings, seed) -> list[dict]:
    """Rows for the (source, method) pairs not computed in this call, from the newest cache entry
    of the same images and parameters: a partial call (``--sources raw``) adds to the table
    instead of shrinking it."""
    done = {(row["source"], row["method"]) for row in rows}
    found = {}
    entries = (folder / store.EMBEDDINGS_CACHE_FOLDER).glob("*.json")
    for measures_file in sorted(entries, key=lambda path: path.stat().st_mtime_ns):
        try:
            origin = json.loads(read_bounded(measures_file)).get("origin", {})
        except (OSError, ValueError, AttributeError):
            continue
        pair = (origin.get("source"), origin.get("method"))
        if (pair in done or pair[0] not in SOURCES or pair[1] not in METHODS or origin.get("images") != images_digest
                or origin.get("parameters") != _parameters(pair[1], settings, seed)):
            continue
        cached = _read_cache_entry(measures_file.with_suffix(".npy"), measures_file, origin.get("points"))
        if cached is not None:
            found[pair] = {"source": pair[0], "method": pair[1], "points": origin["points"], **cached[1]}
    return list(found.values())


class _EmbeddingProgress:
    """A bar over openTSNE's iterations; a start and an end line otherwise."""

    def __init__(self, label, method, settings, enabled, log):
        self.label, self.log, self.iterations = label, log, settings.iterations
        self.show_bar = enabled and method == "tsne" and settings.engine == "opentsne"
        self._bar = None

    def __enter__(self):
        self._started = time.perf_counter()
        if self.show_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=OPENTSNE_EXAGGERATION_ITERATIONS + self.iterations, desc=self.label,
                             unit="iteration", dynamic_ncols=True)
        else:
            self.log(f"{self.label}: computing")
        return self

    def update(self, iterations):
        if self._bar is not None:
            self._bar.update(iterations)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.close()
        if exc[0] is None:
            self.log(f"{self.label}: {time.perf_counter() - self._started:.1f} s")


def json_digest(value) -> str:
    """A short digest of a JSON-able value (its keys sorted): the key of a cache entry."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
