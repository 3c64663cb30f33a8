"""The command line (``python -m mnist_grader``): bad input gets a clear error and exit status 2."""
from __future__ import annotations

import shutil

from tests.grader_course import FIXTURE, grader_cli, private_jupyter_dirs  # noqa: F401


def test_bad_input_gets_a_clear_error(tmp_path):
    proc = grader_cli(tmp_path, "autograde", check=False)
    assert proc.returncode == 2 and "no nbgrader_config.py" in proc.stderr
    course = tmp_path / "unreleased"
    shutil.copytree(FIXTURE, course)
    proc = grader_cli(course, "autograde", "--assignment", "tiny", check=False)
    assert proc.returncode == 2 and "no submissions of 'tiny'" in proc.stderr
    proc = grader_cli(course, "examples", "--assignment", "nope", check=False)
    assert proc.returncode == 2 and "no notebooks in" in proc.stderr or "no mistake library" in \
        proc.stderr
