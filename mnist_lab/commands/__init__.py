"""The command bodies: one module per `mnist-lab` command, called by cli.py with its parsed options.

Each body reads, checks and prints; the work itself lives in the layers below (core, training,
results, analysis), imported inside the body so that `--help` never pays for them.
"""
