"""What else could make `train` faster? Seconds per epoch of the lab's models under variants
that do not change the math: XLA (`jit_compile`), TensorFlow thread settings, more steps per
graph call, and the JAX backend. Each variant runs in a fresh process; median of the epochs
after the first.

    python bench/speed_options.py [--models mlp,cnn] [--epochs 4]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "mnist-lab as shipped": {},
    "jit_compile=True (XLA)": {"jit_compile": True},
    "intra-op threads 2, inter-op 1": {"threads": [2, 1]},
    "200 steps per execution": {"steps_per_execution": 200},
    "JAX backend": {"backend": "jax"},
}


def one_run(model_type, epochs, variant):
    """In this (fresh) process: train with the variant's settings, return epoch seconds."""
    sys.path.insert(0, str(ROOT))
    import keras

    from mnist_lab.training import fit
    from mnist_lab.core.config import load_config
    from mnist_lab.core.data import load_builtin, prepare

    if "threads" in variant:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(variant["threads"][0])
        tf.config.threading.set_inter_op_parallelism_threads(variant["threads"][1])
    config = load_config(ROOT / "configs" / f"{model_type}.yaml", [f"training.epochs={epochs}"])
    model = fit.new_model(config)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=config.training.learning_rate),
                  loss="categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=variant.get("steps_per_execution", fit.STEPS_PER_EXECUTION),
                  jit_compile=variant.get("jit_compile", "auto"))
    trajectory = fit.fit_model(model, config, prepare(load_builtin(), model_type))
    return [row["train_seconds"] for row in trajectory.history], trajectory.history[-1]["test_accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        model_type, name = options.child.split(":", 1)
        print(json.dumps(one_run(model_type, options.epochs, VARIANTS[name])))
        return
    print(f"{'model':7} {'variant':34} {'s/epoch':>8} {'vs shipped':>10} {'test accuracy':>14}")
    for model_type in options.models.split(","):
        shipped = None
        for name, variant in VARIANTS.items():
            environment = {**os.environ, "KERAS_BACKEND": variant.get("backend", "tensorflow")}
            result = subprocess.run([sys.executable, __file__, "--epochs", str(options.epochs), "--child",
                                     f"{model_type}:{name}"], capture_output=True, text=True, env=environment)
            if result.returncode != 0:
                print(f"{model_type:7} {name:34} failed: {result.stderr.strip().splitlines()[-1][:80]}")
                continue
            seconds, accuracy = json.loads(result.stdout.strip().splitlines()[-1])
            median = statistics.median(seconds[1:])
            shipped = shipped or median
            print(f"{model_type:7} {name:34} {median:8.3f} {median / shipped:10.2f} {accuracy:14.4f}", flush=True)


if __name__ == "__main__":
    main()
