"""What is on disk: the results store, checkpoints, event logs, the catalog of runs, and figures."""
