# The course's commands. Each sets up .venv by itself the first time (and does nothing more after).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv test demo train clean release exchange lab bench-training

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, alone and pinned: a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$$(grep -E '^torch==' requirements.txt)"
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the pinned course environment

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

demo: $(STAMP)  ## the main job: train the reference MLP and report test accuracy
	$(BIN)/python -m helpers.train 128

bench-training: $(STAMP)  ## training figures for BENCHMARKS.md: CLI time/accuracy/memory, data paths (~3 min)
	$(BIN)/python benchmarks/bench_training.py

release: $(STAMP)  ## regenerate the student notebook release/mnist_mlp/ from source/ (commit the result)
	# nbgrader runs `alembic` from PATH, so the venv's bin comes first
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbgrader generate_assignment mnist_mlp --force

exchange:  ## create the course's nbgrader exchange folder (for the Assignment List), mode 777
	mkdir -p exchange && chmod 777 exchange

# JupyterLab for this course (LAB_ARGS passes options on, e.g. LAB_ARGS="--port 9999 --no-browser").
# Run from the course folder, so nbgrader's extensions read ./nbgrader_config.py; the assignment is
# released into the course's exchange so the Assignment List shows it.
lab: release exchange  ## JupyterLab with nbgrader: Assignment List, Formgrader, Validate button
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbgrader release_assignment mnist_mlp --force
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/jupyter lab --notebook-dir=. \
		$$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache
