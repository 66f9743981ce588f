"""`mnist-lab visualize`: the lab's Part 3 maps and measures, and the files it wrote."""

from __future__ import annotations

from pathlib import Path

import click

from mnist_lab.core.output import Output


def run(sources, methods, limit, seed, runs, mlp_run, cnn_run, train_missing, perplexity, tsne_engine, ellipse_stds,
        data_path, results_dir, quiet):
    from mnist_lab.analysis.visualize import TsneSettings, visualize
    from mnist_lab.core.config import load_data_option
    from mnist_lab.results import store

    results = Path(results_dir)
    for folder in (results / store.EMBEDDINGS_FOLDER / store.EMBEDDINGS_CACHE_FOLDER, results / store.FIGURES_FOLDER):
        store.check_writable(folder, "--results")
    written = visualize(sources=sources, methods=methods, results_dir=results_dir, limit=limit, seed=seed,
                        runs_by_type={"mlp": mlp_run, "cnn": cnn_run}, train_missing=train_missing,
                        settings=TsneSettings(perplexity=perplexity, engine=tsne_engine),
                        data_config=load_data_option(data_path), ellipse_stds=ellipse_stds, runs=runs,
                        output=Output(log=click.echo, progress=not quiet))
    click.echo("\n".join(f"Wrote {path}" for path in written))
