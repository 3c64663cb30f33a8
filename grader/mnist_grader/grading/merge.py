"""Merge one submission's scratch gradebook into the course gradebook, in ONE transaction.

nbgrader's Gradebook API commits after nearly every call. Grading in parallel writes each submission
to its own scratch gradebook; the parent (the only writer of the real gradebook) copies the results
over with the same API, but with the session's commit turned into a flush, and commits once at the
end. SQLite then applies all of a submission's changes or none: killing the grading command at any
moment leaves every submission either as it was or fully updated, never half-written.

What is copied mirrors nbgrader's ``SaveAutoGrades``: ``auto_score`` and ``needs_manual_grade`` of
every grade (a manual score a grader already gave is kept, and the cell is marked for review),
``auto_comment`` of every comment, the submission's timestamp and each notebook's late penalty.
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

# nbgrader 0.9.6 with SQLAlchemy 2.x warns "Object of type <SubmittedAssignment> not in session"
# while adding a submission; the rows are right (PLATFORM.md), the warning is noise in our output
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


@contextmanager
def one_transaction(gb: Gradebook) -> Iterator[Gradebook]:
    """Run nbgrader Gradebook API calls as a single database transaction."""
    session = gb.db
    session.commit = session.flush  # instance attribute shadows the method until we delete it
    try:
        yield gb
        del session.commit
        session.commit()
    except BaseException:
        if "commit" in vars(session):
            del session.commit
        session.rollback()
        raise


def kernel_scores(scratch_db_url: str, assignment: str,
                  student: str) -> dict[tuple[str, str], tuple[float | None, float]]:
    """{(notebook, test cell): (auto score, max score)} of the autograded test cells that nbgrader
    wrote to a scratch gradebook (the verdict of the student's kernel)."""
    with Gradebook(scratch_db_url) as scratch:
        graded = scratch.find_submission(assignment, student)
        scores = {}
        for nb in graded.notebooks:
            answers = {cell.name for cell in nb.notebook.solution_cells}
            scores.update({(nb.name, g.name): (g.auto_score, g.max_score) for g in nb.grades
                           if g.cell.cell_type == "code" and g.name not in answers})
        return scores


def merge_submission(real_db_url: str, scratch_db_url: str, assignment: str, student: str,
                     flag: bool = False, hold: bool = False,
                     caps: dict[tuple[str, str], float] | None = None) -> float:
    """Copy a student's autograde results from a scratch gradebook into the real one.

    Args:
        real_db_url: the course gradebook.
        scratch_db_url: the gradebook ``nbgrader autograde`` wrote for this one student.
        assignment: assignment id.
        student: student id.
        flag: also flag the submission's notebooks for the instructor (suspicious code).
        hold: record every autograded score as 0 and mark it for manual grading (code outside
            the policy of ``mnist_grader.trusted.policy``; the instructor decides in Formgrader).
        caps: {(notebook, grade id): the most a test cell may score}: the trusted run's verdict
            (its max score when the hidden tests passed, else 0); the lower score counts.

    Returns:
        The submission's total score in the real gradebook after the merge.
    """
    with Gradebook(scratch_db_url) as scratch, Gradebook(real_db_url) as real:
        graded = scratch.find_submission(assignment, student)
        with one_transaction(real):
            real.update_or_create_student(student)
            if graded.timestamp is not None:
                real.update_or_create_submission(assignment, student, timestamp=graded.timestamp)
            else:
                real.update_or_create_submission(assignment, student)
            for graded_nb in graded.notebooks:
                notebook = real.find_submission_notebook(graded_nb.name, assignment, student)
                notebook.late_submission_penalty = graded_nb.late_submission_penalty
                if flag:
                    notebook.flagged = True
                for graded_grade in graded_nb.grades:
                    grade = real.find_grade(graded_grade.name, graded_nb.name, assignment, student)
                    held = hold and graded_grade.auto_score is not None
                    score = graded_grade.auto_score
                    cap = (caps or {}).get((graded_nb.name, graded_grade.name))
                    if score is not None and cap is not None:
                        score = min(score, cap)
                    grade.auto_score = 0.0 if held else score
                    grade.needs_manual_grade = (held or grade.manual_score is not None
                                                or grade.auto_score is None)
                for graded_comment in graded_nb.comments:
                    comment = real.find_comment(graded_comment.name, graded_nb.name, assignment,
                                                student)
                    comment.auto_comment = graded_comment.auto_comment
        return real.find_submission(assignment, student).score


def record_failure(real_db_url: str, assignment: str, student: str) -> float:
    """Make a submission that could not be graded visible: present (scores it already had, else 0)
    and flagged on every notebook, in one transaction.

    Returns:
        The submission's total score in the real gradebook.
    """
    with Gradebook(real_db_url) as real:
        with one_transaction(real):
            real.update_or_create_student(student)
            try:
                submission = real.find_submission(assignment, student)
            except MissingEntry:
                submission = real.add_submission(assignment, student)
            for notebook in submission.notebooks:
                notebook.flagged = True
        return real.find_submission(assignment, student).score
