"""What an experiment is: its config, its data, its identity, and the files and errors every layer uses."""
