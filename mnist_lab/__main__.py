"""`python -m mnist_lab` runs the command line."""

from mnist_lab.cli import run

run()
