"""Release an assignment: nbgrader's own ``generate_assignment``, run with a private Jupyter env."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mnist_grader.course import Course, CourseError
from mnist_grader.jupyter_env import jupyter_env


def run_nbgrader(course: Course, args: list[str], what: str) -> str:
    """Run ``nbgrader ARGS`` in the course folder; returns its output.

    Raises:
        CourseError: nbgrader failed (its last lines are in the message).
    """
    with tempfile.TemporaryDirectory(prefix="nbgrader-env-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course.root,
                              env=jupyter_env(Path(tmp)), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise CourseError(f"{what} failed (nbgrader {' '.join(args)}):\n{tail}")
    return proc.stdout + proc.stderr


def release(course: Course, assignment: str) -> None:
    """``nbgrader generate_assignment ASSIGNMENT --force``: writes release/ and the gradebook."""
    course.source_notebooks(assignment)  # clear error when the assignment does not exist
    run_nbgrader(course, ["generate_assignment", assignment, "--force"], "releasing " + assignment)
    print(f"released {assignment} to {course.folder('release', assignment)}")
