"""Release an assignment: nbgrader's own ``generate_assignment``, run with a private Jupyter env."""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from mnist_grader.course import Course, CourseError
from mnist_grader.jupyter_env import jupyter_env


def run_nbgrader(course: Course, args: list[str], what: str, module: str = "nbgrader") -> str:
    """Run ``python -m MODULE ARGS`` (nbgrader, or a module that runs one of its apps) in the course
    folder with a private Jupyter environment; returns its output.

    Raises:
        CourseError: it failed (its ERROR lines, else its last lines, are in the message).
    """
    with tempfile.TemporaryDirectory(prefix="nbgrader-env-") as tmp:
        proc = subprocess.run([sys.executable, "-m", module, *args], cwd=course.root,
                              env=jupyter_env(Path(tmp)), capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [line for line in lines if "| ERROR]" in line]
        raise CourseError(f"{what} failed (nbgrader {' '.join(args)}):\n"
                          + "\n".join(errors[-5:] or lines[-15:]))
    return proc.stdout + proc.stderr


def release(course: Course, assignment: str) -> None:
    """``nbgrader generate_assignment ASSIGNMENT --force``: writes release/ and the gradebook."""
    course.source_notebooks(assignment)  # clear error when the assignment does not exist
    run_nbgrader(course, ["generate_assignment", assignment, "--force"], "releasing " + assignment)
    print(f"released {assignment} to {course.folder('release', assignment)}")
