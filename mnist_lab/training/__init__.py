"""How a model is trained: the models, the epoch loop, trajectories, sweeps and their executors."""
