"""mnist-lab: the MNIST deep-learning lab as a reproducible command-line tool."""

import os

__version__ = "0.2.0"

# Quiet the info-level C++ logging of TensorFlow versions that honour it (2.21 prints
# a few start-up lines regardless). Set before anything imports Keras.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
