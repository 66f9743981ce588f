"""mnist-lab: the MNIST deep-learning lab as a reproducible command-line tool."""

from importlib import metadata

try:  # one source for the version: the installed distribution's (pyproject.toml)
    __version__ = metadata.version("mnist-lab")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
