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
from mnist_lab.analysis.separability import MEASURES, combined
from mnist_lab.core.describe import EMBEDDING_METHODS, METHODS, SOURCES
from mnist_lab.core.errors import printable
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
    label = f"{representation.source} {EMBEDDING_METHODS[method]} (seed {seed})"
    points = None
    if points_file.exists() or measures_file.exists():
        cached = _read_cache_entry(points_file, measures_file, len(labels))
        if cached is not None:
            log(f"{label}: cached ({points_file.name})")
            return cached
        points = _read_points(points_file, len(labels))
        log(f"{label}: measures recomputed from the cached map ({points_file.name}): made by an earlier version"
            if points is not None else f"Warning: damaged cache entry {cache}.npy/.json, recomputed")
    started = time.perf_counter()
    features = representation.features()
    if points is None:
        with _EmbeddingProgress(f"{label} ({representation.dimensions})", method, settings, progress, log) as bar:
            points = embed_points(features, method, settings, seed, progress=bar.update)
        with atomic_path(points_file) as temporary:
            with open(temporary, "wb") as stream:
                np.save(stream, points)
    measures = separability(features, points, labels, seed)
    measures["seconds"] = time.perf_counter() - started
    # What the entry was computed from, so the separability table can merge entries of earlier runs.
    origin = {"source": representation.source, "method": method, "points": len(labels),
              "images": representation.images, "parameters": parameters, "embedded": representation.embedded}
    atomic_write_text(measures_file, json.dumps({**measures, "origin": origin}, indent=1) + "\n")
    return points, measures


def _parameters(method, settings, seed) -> dict:
    return {"method": method, "seed": seed, **(dataclasses.asdict(settings) if method == "tsne" else {})}


# A cache entry's measures: those of one map.
_MEASURES = dict.fromkeys(MEASURES, NUMBER)


def _read_cache_entry(points_file, measures_file, count):
    """(points, measures) of a cache entry, or None when either file is missing, damaged or made
    by a version that computed other measures."""
    points = _read_points(points_file, count)
    try:
        measures = json.loads(read_bounded(measures_file))
    except (OSError, ValueError):
        return None
    if points is None or wrong_fields(measures, _MEASURES):
        return None
    return points, {name: measures[name] for name in _MEASURES}


def _read_points(points_file, count):
    """A cache entry's map: ``count`` finite 2-D points, or None."""
    try:
        points = np.load(io.BytesIO(read_bounded(points_file)), allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return points if points.shape == (count, 2) and np.isfinite(points).all() else None


def cached_rows(folder, rows, images_digest, settings, seeds) -> list[dict]:
    """Rows for the (source, method) pairs not computed in this call, from the newest cache entries
    of the same images and parameters, one for each of ``seeds`` (the runs a row combines): a
    partial call (``--sources raw``) adds to the table instead of shrinking it."""
    done = {(row["source"], row["method"]) for row in rows}
    found = {}  # (source, method) -> {seed: (points, measures)}
    entries = (folder / store.EMBEDDINGS_CACHE_FOLDER).glob("*.json")
    for measures_file in sorted(entries, key=lambda path: path.stat().st_mtime_ns):
        try:
            origin = json.loads(read_bounded(measures_file)).get("origin", {})
        except (OSError, ValueError, AttributeError):
            continue
        pair = (origin.get("source"), origin.get("method"))
        if pair in done or pair[0] not in SOURCES or pair[1] not in METHODS or origin.get("images") != images_digest:
            continue
        seed = next((seed for seed in seeds if origin.get("parameters") == _parameters(pair[1], settings, seed)), None)
        cached = None if seed is None else _read_cache_entry(measures_file.with_suffix(".npy"), measures_file,
                                                             origin.get("points"))
        if cached is not None:
            found.setdefault(pair, {})[seed] = (origin, cached[1])
    return [{"source": source, "method": method, "points": runs[seeds[0]][0]["points"],
             **combined([runs[seed][1] for seed in seeds]),
             "embedded": printable(runs[seeds[0]][0].get("embedded", "not recorded"), 200),
             "settings": settings.describe(method)}
            for (source, method), runs in found.items() if set(runs) == set(seeds)]


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
