"""mnist-lab: the MNIST deep-learning lab as a reproducible command-line tool."""

import os
from importlib import metadata

try:  # one source for the version: the installed distribution's (pyproject.toml)
    __version__ = metadata.version("mnist-lab")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

# Quiet the info-level C++ logging of TensorFlow versions that honour it (2.21 prints
# a few start-up lines regardless). Set before anything imports Keras.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
