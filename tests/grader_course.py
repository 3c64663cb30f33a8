"""The grader's test kit: the real CLI run on a released copy of the tiny fixture course.

The tiny fixture course (tests/fixtures/tiny_course: two functions, visible and hidden tests) grades
in seconds. Without bubblewrap the grader still works but cannot wall off the file system: the tests
that need the wall are skipped with a loud warning locally; CI installs bubblewrap (.ci/run) and
fails instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mnist_grader.grading.sandbox import find_bwrap
from mnist_grader.jupyter_env import PRIVATE_DIRS

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"
HAVE_BWRAP = find_bwrap() is not None
NO_BWRAP = "bubblewrap (bwrap) is missing: grading runs WITHOUT its file-system/network wall"

if not HAVE_BWRAP:
    warnings.warn(f"\n\n*** {NO_BWRAP}; install it: apt-get install -y bubblewrap ***\n")


def needs_bwrap():
    if HAVE_BWRAP:
        return
    if os.environ.get("CI"):
        pytest.fail(NO_BWRAP + " (CI must have it: see .ci/run)")
    pytest.skip(NO_BWRAP)


@pytest.fixture(scope="module", autouse=True)
def private_jupyter_dirs(tmp_path_factory):
    """Jupyter, IPython, matplotlib and XDG write into temp folders, never the home folder (in every
    test module that imports this fixture)."""
    base = tmp_path_factory.mktemp("jupyter-home")
    with pytest.MonkeyPatch.context() as mp:
        for var, folder in PRIVATE_DIRS.items():
            mp.setenv(var, str(base / folder))
        mp.setenv("MPLBACKEND", "Agg")
        yield


def grader_cli(course: Path, *args: str, check: bool = True, timeout: int = 600,
               env: dict[str, str] | None = None):
    """Run ``python -m mnist_grader ARGS`` (the real CLI) in a course folder (``env``: extra
    environment variables)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "mnist_grader", *args, "--course-dir", str(course)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mnist_grader {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def tiny_course(tmp_path: Path) -> Path:
    """A released copy of the fixture course."""
    course = tmp_path / "tiny_course"
    shutil.copytree(FIXTURE, course)
    grader_cli(course, "release", "--assignment", "tiny")
    return course


# grader QA on the fixture (reduced cheat set: the slow loops and the memory bomb run in
# ``make check-grader``)
TINY_CHEATS = ["cheat-edit-tests", "cheat-delete-tests", "cheat-hide-tracebacks",
               "cheat-rebind-comparisons", "cheat-always-equal", "cheat-sys-exit", "cheat-os-exit",
               "cheat-fork-bomb", "cheat-skip-tests", "cheat-skip-tests-obfuscated",
               "cheat-displayhook-partial-credit", "cheat-rebind-builtin",
               "cheat-print-hidden-tests"]
SANDBOX_CHEATS = ["cheat-read-secrets", "cheat-write-gradebook"]
TINY_MISTAKES = ["mistake-squares-doubles", "mistake-squares-abs", "mistake-mean-sum",
                 "mistake-mean-numpy-float"]


def checked_tiny_course(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """The fixture course after ``python -m mnist_grader check`` on the reduced set."""
    course = tiny_course(tmp_path)
    cheats = TINY_CHEATS + (SANDBOX_CHEATS if HAVE_BWRAP else [])
    proc = grader_cli(course, "check", "--assignment", "tiny", "-j", "2", "--wall-seconds", "120",
                      "--repeat-reference", "2", "--no-progress", "--only", *TINY_MISTAKES,
                      *cheats, check=False)
    return course, proc
