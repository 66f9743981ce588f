"""`python -m mnist_lab` runs the command line."""

from .cli import run

run()
