"""Per-student HTML feedback with nbgrader's own ``generate_feedback``, without hidden tests.

nbgrader's ``GenerateFeedbackApp`` runs as usual (``python -m mnist_grader.feedback`` takes nbgrader's
arguments) except that, after it has read the course's config, the feedback settings are the course's
readable page (``mnist_grader.readable_feedback.configure_feedback``: equations as MathML, test cells
titled by their task, no hidden tests) whatever that config says (a config file would otherwise
override the command line), and ``--autograded-part-only`` adds the provisional page's step.

Feedback is made from the autograded notebooks, and those never held a hidden test: the student's
kernel ran test cells without their hidden part (``mnist_grader.trusted.hidden``), and what the hidden
tests found is the trusted run's own message under each test cell (``mnist_grader.trusted.annotate``).
"""
from __future__ import annotations

import sys
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from mnist_grader.course import Course, CourseError
from mnist_grader.release import run_nbgrader

#: ``python -m mnist_grader.feedback`` flag: feedback on the autograded part only, every cell still
#: waiting for a grader shown as such, never as 0 (``mnist_grader.provisional_feedback``)
AUTOGRADED_PART_ONLY = "--autograded-part-only"


def waiting_for_a_grader(course: Course, assignment: str, students: list[str]) -> list[str]:
    """The students whose submission has a cell that still needs a hand grade (a written answer
    not graded yet, or autograded scores held for review), or that the gradebook does not know."""
    waiting = []
    with Gradebook(course.db_url) as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(assignment, student)
            except MissingEntry:
                waiting.append(student)
                continue
            if any(grade.needs_manual_grade for nb in submission.notebooks for grade in nb.grades):
                waiting.append(student)
    return waiting


def generate_feedback(course: Course, assignment: str, students: list[str] | None = None,
                      include_ungraded: bool = False,
                      autograded_part_only: bool = False) -> tuple[list[Path], list[str]]:
    """Write ``feedback/<student>/<assignment>/*.html`` for graded students.

    Feedback is the last step: written before the hand grading, it would tell a student 0 points
    for every answer not graded yet. So submissions still waiting for a grader are left out unless
    ``include_ungraded``, or unless ``autograded_part_only``: then the page shows only the autograded
    part's scores and marks what waits for a grader (``mnist_grader.provisional_feedback``).

    Returns:
        (the feedback folders written, the students left out because they wait for a grader).
    """
    autograded = course.root / course.directories["autograded"]
    graded = sorted(p.name for p in autograded.iterdir() if (p / assignment).is_dir()) \
        if autograded.is_dir() else []
    wanted = graded if students is None else [s for s in students if s in graded]
    if not wanted:
        raise CourseError(f"nothing autograded for {assignment!r} in {autograded}: run "
                          f"python -m mnist_grader autograde first")
    waiting = [] if include_ungraded or autograded_part_only else \
        waiting_for_a_grader(course, assignment, wanted)
    ready = [s for s in wanted if s not in waiting]
    if not ready:
        return [], waiting
    # one nbgrader call for everybody but those waiting, or one per requested student
    # (--student takes one id)
    calls = [[assignment, "--force", f"--CourseDirectory.student_id_exclude={','.join(waiting)}"]] \
        if students is None else [[assignment, "--force", f"--student={s}"] for s in ready]
    for args in calls:
        args += [AUTOGRADED_PART_ONLY] if autograded_part_only else []
        run_nbgrader(course, args, "writing feedback", module=__name__)
    return [course.folder("feedback", assignment, s) for s in ready
            if course.folder("feedback", assignment, s).is_dir()], waiting


def write_student_feedback(course: Course, assignment: str, student: str,
                           autograded_part_only: bool = False) -> Path:
    """nbgrader's ``generate_feedback`` for one student, in this process, with the course's readable
    page: what a long-lived caller (``mnist_grader.on_submit``) uses, saving the interpreter start and
    nbconvert's imports that a ``python -m mnist_grader.feedback`` costs per page (3-4 s of 4 s on two
    cores). Nothing here checks whether the submission waits for a grader (``generate_feedback``
    does).

    Returns:
        The student's feedback folder.

    Raises:
        CourseError: nbgrader failed; the message says why.
    """
    from nbgrader.converters import GenerateFeedback, NbGraderException
    from nbgrader.coursedir import CourseDirectory

    from mnist_grader.readable_feedback import configure_feedback

    config = course.student_config(assignment, student)
    config.BaseConverter.force = True  # a newer grading replaces the page
    configure_feedback(config, autograded_part_only=autograded_part_only)
    try:
        GenerateFeedback(coursedir=CourseDirectory(config=config), config=config).start()
    except NbGraderException as exc:
        raise CourseError(f"writing feedback for {student} failed: {exc}") from exc
    return course.folder("feedback", assignment, student)


def main() -> None:
    """nbgrader generate_feedback with the course's readable feedback settings enforced."""
    from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp

    from mnist_grader.readable_feedback import configure_feedback

    argv = [arg for arg in sys.argv[1:] if arg != AUTOGRADED_PART_ONLY]
    app = GenerateFeedbackApp.instance()
    app.initialize(argv)
    configure_feedback(app.config, autograded_part_only=AUTOGRADED_PART_ONLY in sys.argv[1:])
    app.start()


if __name__ == "__main__":
    main()
