"""The worker pool (``python -m mnist_grader autograde -j N``): the gradebook survives the grading
command being killed at any moment, and the next run repairs what it left."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.grader_course import grader_cli, tiny_course


def gradebook_state(db_path: Path) -> tuple[str, dict[str, int], int]:
    """(integrity, grade rows per submitted notebook, grade cells per notebook)."""
    with sqlite3.connect(db_path) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        per_notebook = dict(db.execute(
            "SELECT student.id, COUNT(grade.id) FROM submitted_notebook "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
            "JOIN student ON submitted_assignment.student_id = student.id "
            "LEFT JOIN grade ON grade.notebook_id = submitted_notebook.id "
            "GROUP BY submitted_notebook.id").fetchall())
        cells = db.execute("SELECT COUNT(*) FROM grade_cells").fetchone()[0]
    return integrity, per_notebook, cells


def killed_run_uids(scratch_parent: Path) -> set[int]:
    """The sandbox uids of the kernels a killed grading run had started (from its scratch folder)."""
    import json

    return {json.loads(p.read_text())["uid"]
            for p in scratch_parent.glob("grading-*/*/kernel-settings.json")}


def test_killed_grading_leaves_a_consistent_gradebook(tmp_path):
    course = tiny_course(tmp_path)
    students = ["example-reference", "example-blank", "mistake-squares-doubles",
                "mistake-squares-abs", "mistake-mean-sum", "mistake-mean-numpy-float"]
    grader_cli(course, "examples", "--assignment", "tiny", "--only", *students)
    scratch = tmp_path / "scratch"  # where the runs put their scratch folders (TMPDIR)
    scratch.mkdir()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               TMPDIR=str(scratch))
    proc = subprocess.Popen([sys.executable, "-m", "mnist_grader", "autograde", "--assignment", "tiny",
                             "-j", "2", "--no-progress", "--course-dir", str(course)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    db_path = course / "gradebook.db"
    deadline = time.monotonic() + 240
    merged = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            merged = len(gradebook_state(db_path)[1])
        except sqlite3.OperationalError:  # busy while the parent writes
            merged = 0
        if merged >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "grading finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)  # the harshest interruption: no cleanup code runs
    proc.wait()

    integrity, per_notebook, cells = gradebook_state(db_path)
    assert integrity == "ok"
    assert 1 <= len(per_notebook) < len(students)
    assert all(count == cells for count in per_notebook.values()), per_notebook  # none half-written
    time.sleep(1)
    from mnist_grader.check import sandbox_leftovers
    assert sandbox_leftovers(killed_run_uids(scratch)) == []  # they died with the grading command
    assert len(list(scratch.glob("grading-*"))) == 1  # the killed run's scratch folder is left

    # re-run (with one fresh nbgrader process per submission: the other way of running it)
    rerun = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress",
                       "--no-fork-server", env={"TMPDIR": str(scratch)})
    assert "6/6 submissions graded" in rerun.stdout
    assert "scratch folder of a grading run that was killed" in rerun.stderr
    assert list(scratch.iterdir()) == []  # the dead run's folder removed, the rerun's own too
    integrity, per_notebook, cells = gradebook_state(db_path)
    assert integrity == "ok" and len(per_notebook) == len(students)
    assert all(count == cells for count in per_notebook.values())
    graded = sorted(p.parent.name for p in (course / "autograded").glob("*/tiny"))
    assert graded == sorted(students)
    assert not list((course / "autograded").glob("*/.*"))  # no staging folder left
