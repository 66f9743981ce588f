# The two set-up commands of the README. Both create .venv when it is missing,
# install what they need from the repository's own files, and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

demo: $(VENV)/.installed
	$(BIN)/mnist-lab train configs/cnn.yaml

# The whole suite on TensorFlow, then the core training tests on JAX, each on two test processes:
# most tests wait on the command-line processes they start (here 8 min 44 s for the suite, which
# took 15 min 44 s in one process with two more trials; 78 s for the JAX tests, 108 s in one).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 -m backend

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the package's declaration changes (the install is editable).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
