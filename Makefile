# The two set-up commands of the README. Both create .venv when it is missing,
# install what they need from the repository's own files, and are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test docs bench clean

demo: $(VENV)/.installed
	$(BIN)/mnist-lab train configs/cnn.yaml

# The whole suite on TensorFlow, then the core training tests on JAX, each on two test processes:
# most tests wait on the command-line processes they start (fresh clones on the 2-core AMD EPYC:
# 6 min 31-39 s for the suite's 585-588 tests, 50-51 s for the 38 JAX tests, 8 min 35-52 s in all
# with the install; before, 6 min 40-43 s for 568-569 tests, 8 min 37 s - 9 min 3 s; before a resume
# and a reference moved into the test's process where the process was not
# what was tested, 7 min 20-34 s for 569 tests and 9 min 26-50 s in all; earlier, 7 min 23 s for
# 487 tests; on a shared 2-core Xeon up to 10 min 21 s for 431
# tests; one process took about twice as long; three took longer than two).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -n 2
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 -m backend

# The reference in docs/ as a site in site/; strict: a broken link or anchor fails the build.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

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

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache
