"""Grader QA (``python -m mnist_grader check``), end to end with real nbgrader on real notebooks.

Both sides on the tiny fixture course: right work gets full marks, each mistake and cheat loses what
the mistake library says, and a library that expects a loss that does not happen fails the check.
One test runs the real mnist_mlp assignment with a reduced example set (``make check-grader`` runs
the full set).
"""
from __future__ import annotations

import shutil

import nbformat
import pytest

from tests.grader_course import (REPO, SANDBOX_CHEATS, grader_cli, needs_bwrap,  # noqa: F401
                                 private_jupyter_dirs, tiny_course)


def test_check_passes_on_fixture(checked_tiny):
    course, proc = checked_tiny
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    for reference in ("example-reference", "example-reference-regrade-2"):
        row = next(line for line in out.splitlines() if line.startswith(f"{reference} "))
        assert row.split()[1:3] == ["full", "5"] and row.rstrip().endswith("full (5)"), row
    assert "MISSED" not in out and "HARM" not in out and "GAINED" not in out
    for mistake in ("squares-doubles", "squares-abs", "mean-sum", "mean-numpy-float"):
        row = next(line for line in out.splitlines() if line.startswith(f"mistake-{mistake} "))
        assert row.rstrip().endswith("caught"), row
    row = next(line for line in out.splitlines() if line.startswith("cheat-os-exit "))
    assert "failed to grade -> 0, flagged" in row
    # extra cells that reach for IPython cannot gain (the trusted run decides) and are flagged
    for cheat in ("skip-tests", "skip-tests-obfuscated", "print-hidden-tests"):
        row = next(line for line in out.splitlines() if line.startswith(f"cheat-{cheat} "))
        assert "no gain (3 <= 3), flagged" in row, row
    # answers that reach for the machinery are held for review
    for cheat in ("displayhook-partial-credit", "rebind-builtin"):
        row = next(line for line in out.splitlines() if line.startswith(f"cheat-{cheat} "))
        assert "held at 0, flagged for review" in row, row
    # In the gradebook: 0 points, every autograded cell waiting for the instructor's manual grade.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        held = gb.find_submission("tiny", "cheat-displayhook-partial-credit")
        assert held.score == 0 and all(nb.flagged for nb in held.notebooks)
        assert all(g.needs_manual_grade for nb in held.notebooks for g in nb.grades if g.auto_score is not None)
        reference = gb.find_submission("tiny", "example-reference")
        assert reference.score == 5 and not any(nb.flagged for nb in reference.notebooks)  # 5 autograded + 1 manual


def test_sandbox_blocks_reading_and_writing_outside(checked_tiny):
    needs_bwrap()
    course, proc = checked_tiny
    for cheat in SANDBOX_CHEATS:
        nb = nbformat.read(str(course / "autograded" / cheat / "tiny" / "tiny.ipynb"), as_version=4)
        text = "".join(o.get("text", "") for o in nb.cells[0].get("outputs", []))
        assert "CHEAT-SUCCEEDED" not in text, text
        assert text.strip(), "the cheat cell ran and reported"
    assert "files outside my own folder that I could read: 0" in "".join(
        o.get("text", "") for o in nbformat.read(
            str(course / "autograded" / "cheat-read-secrets" / "tiny" / "tiny.ipynb"),
            as_version=4).cells[0].outputs)
    assert not (course / "CHEATED.txt").exists()


def test_check_fails_when_a_mistake_is_missed(tmp_path):
    """The other side: a mistake library that expects a cell to lose points it does not lose."""
    course = tiny_course(tmp_path)
    library = (course / "tiny_mistakes.py").read_text()
    # squares-abs is only wrong for negative numbers: the visible test cannot catch it
    library = library.replace('must_lose=["test_squares_hidden"], why="wrong sign',
                              'must_lose=["test_squares_visible"], why="wrong sign')
    (course / "tiny_mistakes.py").write_text(library)
    proc = grader_cli(course, "check", "--assignment", "tiny", "-j", "2", "--repeat-reference",
                      "1", "--no-progress", "--only", "mistake-squares-abs", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "MISSED test_squares_visible" in proc.stdout




def test_mnist_mlp_reference_full_mistake_caught(tmp_path, real_mnist_root):
    if not (REPO / "source" / "mnist_mlp").is_dir():
        pytest.skip("source/mnist_mlp is not there yet")
    course = tmp_path / "course"
    course.mkdir()
    for name in ("source", "release"):
        shutil.copytree(REPO / name, course / name)
    shutil.copy(REPO / "nbgrader_config.py", course)
    grader_cli(course, "release")
    proc = grader_cli(course, "check", "-j", "2", "--repeat-reference", "1", "--no-progress",
                      "--only", "mistake-softmax-overflow", "mistake-no-batchnorm", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "example-reference" in proc.stdout and "BELOW FULL" not in proc.stdout
    assert proc.stdout.count("caught") == 2
