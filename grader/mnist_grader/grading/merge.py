"""Runs in the grading command (the parent, the only writer of the real gradebook): the merge of each
submission's scratch gradebook into the course gradebook, in ONE transaction.

nbgrader's Gradebook API commits after nearly every call. Grading in parallel writes each submission
to its own scratch gradebook; the parent (the only writer of the real gradebook) copies the results
over with the same API, but with the session's commit turned into a flush, and commits once at the
end. SQLite then applies all of a submission's changes or none: killing the grading command at any
moment leaves every submission either as it was or fully updated, never half-written.

What is copied mirrors nbgrader's ``SaveAutoGrades``: ``auto_score`` and ``needs_manual_grade`` of
every grade (a manual score a grader already gave is kept, and the cell is marked for review),
``auto_comment`` of every comment, the submission's timestamp and each notebook's late penalty.

Around it (``finish_when_unlocked``): the flags (what intake left out, the scan of extra cells, the
policy's holds, disagreements with the trusted run), each test cell capped by the trusted run's
verdict, and the autograded notebooks copied back, published only after the commit.
"""
from __future__ import annotations

import copy
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

from mnist_grader.course import Course
from mnist_grader.grading.gradebook_lock import is_locked_error, wait_until_unlocked
from mnist_grader.grading.recovery import discard_staged, publish_staged, staging_folder
from mnist_grader.grading.scan import machinery_flags
from mnist_grader.trusted.annotate import annotate_notebook
from mnist_grader.trusted.launch import TrustedReport

if TYPE_CHECKING:  # the pool hands its results here
    from mnist_grader.grading.pool import GradeResult

# nbgrader 0.9.6 with SQLAlchemy 2.x warns "Object of type <SubmittedAssignment> not in session"
# while adding a submission; the rows are right (PLATFORM.md), the warning is noise in our output
warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")


@dataclass
class MergedScores:
    """A submission's scores in the real gradebook, read in the merge's own session.

    Args:
        score: its total.
        max_score: the most it could score.
        cells: {"notebook/grade id": score} of every graded cell.
    """

    score: float
    max_score: float
    cells: dict[str, float | None]


def _merged_scores(real: Gradebook, assignment: str, student: str) -> MergedScores:
    submission = real.find_submission(assignment, student)
    return MergedScores(score=submission.score, max_score=submission.max_score,
                        cells={f"{g.notebook.name}/{g.name}": g.score
                               for nb in submission.notebooks for g in nb.grades})


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
                     caps: dict[tuple[str, str], float] | None = None) -> MergedScores:
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
        The submission's scores in the real gradebook after the merge.
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
        return _merged_scores(real, assignment, student)


def record_failure(real_db_url: str, assignment: str, student: str) -> MergedScores:
    """Make a submission that could not be graded visible: present (scores it already had, else 0)
    and flagged on every notebook, in one transaction.

    Returns:
        The submission's scores in the real gradebook.
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
        return _merged_scores(real, assignment, student)


def finish_when_unlocked(course: Course, assignment: str, result: GradeResult,
                         gradebook_wait: float, keep_scratch: bool) -> GradeResult:
    """``finish`` once the real gradebook can be written (waits for another program's lock,
    bounded), then move the autograded notebooks into place: after the commit, never before.

    Args:
        gradebook_wait: seconds to wait for another program's lock on the gradebook.
        keep_scratch: leave the submission's scratch folder for inspection.
    """
    final = course.folder("autograded", assignment, result.student)
    deadline = time.monotonic() + gradebook_wait
    while True:
        wait_until_unlocked(course.gradebook_path, max(0.0, deadline - time.monotonic()))
        attempt = copy.deepcopy(result)
        try:
            finished = finish(course, assignment, attempt, keep_scratch)
        except Exception as exc:
            discard_staged(final)
            if is_locked_error(exc):
                continue  # locked again between the wait and the merge: wait again
            raise
        publish_staged(final)
        return finished


def finish(course: Course, assignment: str, result: GradeResult, keep_scratch: bool) -> GradeResult:
    """Merge one result into the real gradebook and copy its autograded notebooks (main thread).

    Each autograded test cell scores the lower of the student's kernel (visible tests) and the
    trusted run (visible and hidden tests); code outside the policy holds every score at 0.
    """
    index = result.scratch
    submitted_dir = index / "course" / course.directories["submitted"] / result.student / assignment
    holds = [h for job in result.jobs for h in job.holds]
    result.held = bool(holds)
    result.flags += [f"held: {h}" for h in holds]
    for notebook in sorted(submitted_dir.glob("*.ipynb")):
        result.flags += [f"{notebook.name}: {f}" for f in machinery_flags(notebook)]
    report = result.trusted or TrustedReport(reason="the trusted run did not start")
    real_url = course.db_url
    if result.ok:
        scratch_url = f"sqlite:///{index}/course/gradebook.db"
        caps = {}
        for (notebook, cell), (kernel, maximum) in kernel_scores(
                scratch_url, assignment, result.student).items():
            verdict = report.verdict(notebook, cell)
            caps[(notebook, cell)] = maximum if verdict.ok else 0.0
            if kernel is not None and kernel >= maximum > 0 and not verdict.ok and \
                    verdict.failed_in != "hidden":
                result.flags.append(f"{notebook}/{cell} passes in the student's kernel but not "
                                    f"in the trusted run: {verdict.message[:160]}")
        if report.reason:
            result.flags.append(f"trusted run: {report.reason}")
        copy_autograded(course, assignment, index, result.student, report, holds)
        merged = merge_submission(real_url, scratch_url, assignment, result.student,
                                  flag=bool(result.flags), hold=result.held, caps=caps)
    else:
        merged = record_failure(real_url, assignment, result.student)
    result.score, result.max_score, result.scores = merged.score, merged.max_score, merged.cells
    if not keep_scratch:
        shutil.rmtree(index, ignore_errors=True)
    return result


def copy_autograded(course: Course, assignment: str, scratch: Path, student: str,
                    report: TrustedReport, holds: list[str]) -> None:
    """Copy the autograded notebooks (only notebooks: nothing else the student wrote) back,
    each test cell with the trusted run's verdict, to a staging folder that ``publish_staged``
    moves into place after the gradebook commit."""
    src = scratch / "course" / course.directories["autograded"] / student / assignment
    dest = staging_folder(course.folder("autograded", assignment, student))
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for notebook in src.glob("*.ipynb"):
        annotate_notebook(notebook, report, holds)
    # submission_secret.txt names the feedback file nbgrader's release_feedback publishes
    for name in [p.name for p in src.glob("*.ipynb")] + ["timestamp.txt", "submission_secret.txt"]:
        if (src / name).is_file():
            shutil.copyfile(src / name, dest / name)
