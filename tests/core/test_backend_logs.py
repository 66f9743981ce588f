import os
import subprocess
import sys

from mnist_lab.core import backend_logs

from conftest import ROOT

TRAIN = ["train", str(ROOT / "configs" / "logreg.yaml"), "--set", "data.train_limit=500", "--set",
         "data.test_limit=100", "--set", "training.epochs=1", "--no-tensorboard"]


def test_abseil_chatter_is_noise_and_everything_else_passes():
    chatter = [b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
               b"I0000 00:00:1796419060.611395    3547 port.cc:153] oneDNN custom operations are on.",
               b"W1204 19:36:50.123456   12 cpu_feature_guard.cc:210] This TensorFlow binary is optimized",
               b"E0000 00:00:1796419041.472448    3387 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"]
    kept = [b"E0000 00:00:1796419041.472448    3387 some_kernel.cc:52] Out of memory while allocating",
            b"F0000 00:00:1796419041.472448    3387 check.cc:12] Check failed: size > 0",
            b"Error: cnn.yaml: model.type: expected one of logreg, mlp, cnn", b"I0000 is not an abseil line", b""]
    assert [backend_logs.noise(line) for line in chatter] == [True] * 4
    assert [backend_logs.noise(line) for line in kept] == [False] * 5


def test_a_command_prints_no_backend_chatter_unless_debugging(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != backend_logs.VARIABLE}
    runs = {}
    for name, options in (("quiet", []), ("debug", ["--debug"])):
        runs[name] = subprocess.run([sys.executable, "-m", "mnist_lab", *options, *TRAIN, "--results",
                                     str(tmp_path / name)], capture_output=True, text=True, env=environment)
        assert runs[name].returncode == 0, runs[name].stderr
        assert "Test loss" in runs[name].stdout
    assert "InitializeLog" not in runs["quiet"].stderr and "00:00:" not in runs["quiet"].stderr, runs["quiet"].stderr
    # --debug leaves the descriptor alone: the same run shows what the filter kept back (the check can fail).
    assert "InitializeLog" in runs["debug"].stderr


def test_a_script_using_the_api_prints_no_backend_chatter(tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != backend_logs.VARIABLE}
    script = ("from mnist_lab import api\n"
              f"result = api.train('logreg', {{'data.train_limit': 500, 'data.test_limit': 100, 'training.epochs': 1}}, "
              f"results={str(tmp_path)!r}, progress=False, tensorboard=False)\n"
              "import sys; print('accuracy', result.test_accuracy); print('kept', file=sys.stderr)\n")
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment)
    assert ran.returncode == 0 and "accuracy" in ran.stdout, ran.stderr
    assert "InitializeLog" not in ran.stderr and "00:00:" not in ran.stderr, ran.stderr
    assert ran.stderr.strip().endswith("kept")  # the script's own stderr still shows


def test_a_command_started_with_standard_error_closed_still_runs():
    listed = subprocess.run(f"{sys.executable} -m mnist_lab configs 2>&-", shell=True, capture_output=True, text=True)
    assert listed.returncode == 0 and "sweep-notebook" in listed.stdout
