# The course's commands. Each sets up .venv by itself the first time (and does nothing more after).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv test demo mnist clean release exchange lab bench-training autograde feedback \
        check-grader bench-grading bench-optimizer

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

# Grading (instructor/): JOBS submissions at once, each in its own bubblewrap sandbox.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
INSTRUCTOR := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m instructor

mnist: $(STAMP)  ## check MNIST (MNIST_ROOT or data/mnist; downloaded and verified once)
	$(BIN)/python -c "from helpers.data import load_mnist; load_mnist('train'); load_mnist('test')"

# MNIST first: the grading sandbox has no network.
demo: release mnist  ## the main job: release, example submissions, parallel sandboxed grading, feedback, gradebook
	$(INSTRUCTOR) examples --clean --kind honest
	$(INSTRUCTOR) examples --only cheat-read-secrets cheat-write-gradebook cheat-fork-bomb \
		cheat-rebind-comparisons cheat-always-equal
	$(INSTRUCTOR) autograde -j $(JOBS)
	$(INSTRUCTOR) feedback
	$(INSTRUCTOR) export --output grades.csv
	$(INSTRUCTOR) table

autograde: $(STAMP)  ## grade every submission in submitted/ in parallel, sandboxed (JOBS=N workers)
	$(INSTRUCTOR) autograde -j $(JOBS)

feedback: $(STAMP)  ## per-student HTML feedback without hidden tests, and grades.csv
	$(INSTRUCTOR) feedback
	$(INSTRUCTOR) export --output grades.csv

check-grader: release mnist  ## grader QA: every mistake caught, no cheat gains, reference full, blank 0 (~10 min)
	$(INSTRUCTOR) check -j $(JOBS)

bench-grading: release  ## grading figures for BENCHMARKS.md: parallel sandboxed vs plain nbgrader (~5 min)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/bench_grading.py

bench-training: $(STAMP)  ## training figures for BENCHMARKS.md: CLI time/accuracy/memory, data paths (~3 min)
	$(BIN)/python benchmarks/bench_training.py

bench-optimizer: $(STAMP)  ## fit's optimiser for BENCHMARKS.md: torch.optim vs the private fused kernel, CLI end to end (~3 min)
	$(BIN)/python benchmarks/bench_optimizer.py

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
