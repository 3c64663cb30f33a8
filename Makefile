# The course's commands. Each sets up .venv by itself the first time (and does nothing more after).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help venv test demo mnist clean release exchange publish lab student student-lab hub hub-stop hub-clean roster \
        bench-training autograde feedback check-grader bench-grading bench-optimizer

help:  ## list the commands
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# The course folder's environment: the course (helpers) with its lab, instructor and test extras, and
# the grader (grader/, package mnist_grader). Pins: requirements/*.txt, one file per role.
REQUIREMENTS := requirements/student.txt requirements/lab.txt requirements/instructor.txt requirements/test.txt
$(STAMP): $(REQUIREMENTS) pyproject.toml grader/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, alone and pinned: a bare torch requirement would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q "$$(grep -E '^torch==' requirements/student.txt)"
	$(BIN)/python -m pip install -q $(addprefix -r ,$(REQUIREMENTS)) "setuptools>=77"
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e . -e ./grader
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the pinned course environment

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest

# Grading (grader/, package mnist_grader): JOBS submissions at once, each in its own bubblewrap sandbox.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
GRADER := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m mnist_grader

mnist: $(STAMP)  ## check MNIST (MNIST_ROOT or data/mnist; downloaded and verified once)
	$(BIN)/python -c "from helpers.data import load_mnist; load_mnist('train'); load_mnist('test')"

# MNIST first: the grading sandbox has no network. The example students get names from a roster
# (as a real class list would give them). Feedback comes after the hand grading, so the demo stops
# there: grade the written answers in Formgrader, then `make feedback`.
EXAMPLE_ROSTER := examples-roster.csv
demo: release mnist  ## the main job: release, example submissions with names, parallel sandboxed grading, gradebook
	rm -f $(EXAMPLE_ROSTER)
	$(GRADER) examples --clean --kind honest --roster $(EXAMPLE_ROSTER)
	$(GRADER) examples --only cheat-read-secrets cheat-write-gradebook cheat-fork-bomb \
		cheat-rebind-comparisons cheat-always-equal --roster $(EXAMPLE_ROSTER)
	$(GRADER) roster $(EXAMPLE_ROSTER)
	$(GRADER) autograde -j $(JOBS)
	$(GRADER) export --output grades.csv
	$(GRADER) table
	@echo "next: grade the written answers by hand (make lab, then Nbgrader > Formgrader > Manual Grading);"
	@echo "      then make feedback (feedback only for fully graded submissions)"

autograde: $(STAMP)  ## grade every submission in submitted/ in parallel, sandboxed (JOBS=N workers)
	$(GRADER) autograde -j $(JOBS)

feedback: $(STAMP)  ## after hand grading: per-student HTML feedback without hidden tests, and grades.csv
	$(GRADER) feedback
	$(GRADER) export --output grades.csv

check-grader: release mnist  ## grader QA: every mistake caught, no cheat gains, reference full, blank 0 (~10 min)
	$(GRADER) check -j $(JOBS)

bench-grading: release  ## grading figures for BENCHMARKS.md: parallel sandboxed vs plain nbgrader (~5 min)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/bench_grading.py

roster: $(STAMP)  ## students' names into the gradebook: make roster ROSTER=students.csv (id,first_name,last_name,email)
	@test -n "$(ROSTER)" || { echo "error: name the class list: make roster ROSTER=students.csv" >&2; exit 2; }
	$(GRADER) roster "$(ROSTER)"

bench-training: $(STAMP)  ## training figures for BENCHMARKS.md: CLI time/accuracy/memory, data paths (~3 min)
	$(BIN)/python benchmarks/bench_training.py

bench-optimizer: $(STAMP)  ## fit's optimiser for BENCHMARKS.md: torch.optim vs the private fused kernel, CLI end to end (~3 min)
	$(BIN)/python benchmarks/bench_optimizer.py

release: $(STAMP)  ## regenerate the student notebook release/mnist_mlp/ from source/ (commit the result)
	# nbgrader runs `alembic` from PATH, so the venv's bin comes first
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbgrader generate_assignment mnist_mlp --force

exchange:  ## create the course's nbgrader exchange folder (for the Assignment List), mode 777
	mkdir -p exchange && chmod 777 exchange

publish: release exchange  ## release mnist_mlp into the course's exchange, where students fetch it
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/nbgrader release_assignment mnist_mlp --force

# The instructor's JupyterLab (LAB_ARGS passes options on, e.g. LAB_ARGS="--port 9999 --no-browser").
# Run from the course folder, so nbgrader's extensions read ./nbgrader_config.py. Nobody works in
# release/: it is regenerated here; students work in their own folder (make student).
# Formgrader's Autograde log shows what the server's logger records meanwhile: INFO and up only.
lab: publish  ## the instructor's JupyterLab in the course: Formgrader, Create Assignment, Validate
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/jupyter lab --notebook-dir=. \
		"--ServerApp.logging_config=$$($(BIN)/python -c 'from mnist_grader.nbgrader_autograde import QUIET_SERVER_LOGGING as q; print(q)')" \
		$$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

# A student's side on one machine: a folder outside the course with its own environment (the
# pinned packages and helpers, no instructor tools, Formgrader switched off) and the assignment
# fetched from the course's exchange. Running it again keeps the student's work.
STUDENT_DIR ?= ../mnist-student
STUDENT_ENV ?= $(STUDENT_DIR)/.venv
student: publish  ## a student workspace outside the course (STUDENT_DIR=../mnist-student): own env, assignment fetched
	$(BIN)/python -m deploy student --dir "$(STUDENT_DIR)" --env "$(STUDENT_ENV)"

student-lab:  ## a student's JupyterLab rooted at STUDENT_DIR: Assignment List and Validate, no Formgrader
	@test -x "$(STUDENT_ENV)/bin/jupyter" || { echo "error: no student workspace at $(STUDENT_DIR):" \
		"run make student STUDENT_DIR=$(STUDENT_DIR) first" >&2; exit 2; }
	cd "$(STUDENT_DIR)" && PATH="$(abspath $(STUDENT_ENV))/bin:$$PATH" \
		exec "$(abspath $(STUDENT_ENV))/bin/jupyter" lab --notebook-dir=. \
		$$(test "$$(id -u)" = 0 && echo --allow-root) $(LAB_ARGS)

# The course on a multi-user JupyterHub on 127.0.0.1 (deploy/hub.py): an instructor and HUB_STUDENTS
# students as Unix users (named HUB_PREFIX...), PAM logins with generated passwords, nbgrader's
# exchange shared between them, the instructor's Formgrader in the instructor's server. Needs root.
HUB_DIR ?= build/hub
HUB_PREFIX ?= mnistc-
HUB_STUDENTS ?= 2
HUB_PORT ?= 0
HUB_ON_SUBMIT ?= 0
HUB_STUDENT_ENV ?= $(HUB_DIR)/student-env
HUB_INSTRUCTOR_ENV ?= $(HUB_DIR)/instructor-env
NODE_DIR ?= build/node
PROXY := $(NODE_DIR)/node_modules/.bin/configurable-http-proxy

# The proxy, from npm, pinned by hub/package-lock.json, installed into the (gitignored) build folder.
$(NODE_DIR)/.installed: hub/package.json hub/package-lock.json
	@command -v npm >/dev/null || { echo "error: the hub's proxy is an npm package: install node and" \
		"npm (apt-get install -y nodejs npm)" >&2; exit 2; }
	mkdir -p $(NODE_DIR)
	cp hub/package.json hub/package-lock.json $(NODE_DIR)/
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

hub: $(STAMP) $(NODE_DIR)/.installed  ## JupyterHub on 127.0.0.1 with an instructor and students as Unix users (root; HUB_PORT=0: free port; HUB_ON_SUBMIT=1: autograde each submission)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m deploy hub start --hub-dir "$(HUB_DIR)" \
		--env "$(HUB_STUDENT_ENV)" --instructor-env "$(HUB_INSTRUCTOR_ENV)" --proxy "$(PROXY)" --prefix "$(HUB_PREFIX)" \
		--students $(HUB_STUDENTS) --port $(HUB_PORT) $(if $(filter 1,$(HUB_ON_SUBMIT)),--on-submit)

hub-stop:  ## stop the hub by its PID (users and homes stay)
	$(BIN)/python -m deploy hub stop --hub-dir "$(HUB_DIR)"

hub-clean:  ## stop the hub and remove its users, their homes and HUB_DIR: nothing left
	$(BIN)/python -m deploy hub clean --hub-dir "$(HUB_DIR)"

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache
