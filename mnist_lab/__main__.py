"""`python -m mnist_lab` runs the command line."""

from .cli import main

main(prog_name="mnist-lab")
