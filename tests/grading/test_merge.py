"""The merge of a scratch gradebook into the course gradebook: one transaction, nothing half-written."""
from __future__ import annotations

import shutil

import pytest

from tests.grader_course import grader_cli, tiny_course


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader 0.9.6 + SQLAlchemy 2
def test_merge_is_one_transaction(tmp_path, monkeypatch):
    """A failure in the middle of a merge leaves the real gradebook exactly as it was."""
    from nbgrader.api import Gradebook

    from mnist_grader.course import load_course
    from mnist_grader.grading import merge

    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", "example-reference")
    grader_cli(course, "autograde", "--assignment", "tiny", "-j", "1", "--no-progress")
    graded = tmp_path / "graded.db"
    shutil.copy(course / "gradebook.db", graded)
    real = tmp_path / "real.db"
    shutil.copy(course / "gradebook.db", real)
    with Gradebook(f"sqlite:///{real}") as gb:
        gb.remove_student("example-reference")
    before = real.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Gradebook, "find_comment", broken)
    with pytest.raises(RuntimeError):
        merge.merge_submission(f"sqlite:///{real}", f"sqlite:///{graded}", "tiny",
                               "example-reference")
    with Gradebook(f"sqlite:///{real}") as gb:
        assert [s.id for s in gb.students] == []  # not even the student row was kept
    monkeypatch.undo()
    merged = merge.merge_submission(f"sqlite:///{real}", f"sqlite:///{graded}", "tiny",
                                    "example-reference")
    assert merged.score == 5.0
    assert merged.cells["tiny/test_squares_visible"] > 0  # what the merge wrote, read in its session
    assert sum(v or 0 for v in merged.cells.values()) == merged.score
    assert load_course(course).course_id == "tiny_course"
    assert before != real.read_bytes()

    # the other side: held for review, every autograded cell scores 0 and waits for a grader
    held = merge.merge_submission(f"sqlite:///{real}", f"sqlite:///{graded}", "tiny",
                                  "example-reference", hold=True)
    assert held.score == 0 and held.max_score == merged.max_score
    with Gradebook(f"sqlite:///{real}") as gb:
        grades = [g for nb in gb.find_submission("tiny", "example-reference").notebooks
                  for g in nb.grades if g.auto_score is not None]
        assert grades and all(g.needs_manual_grade and g.auto_score == 0 for g in grades)
