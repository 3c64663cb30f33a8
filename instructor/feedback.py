"""Per-student HTML feedback with nbgrader's own ``generate_feedback``, without hidden tests.

nbgrader's ``GenerateFeedbackApp`` runs as usual (``python -m instructor.feedback`` takes nbgrader's
arguments) except that, after it has read the course's config, its feedback preprocessors are set to
``FEEDBACK_PREPROCESSORS`` whatever that config says (a config file would otherwise override the
command line): nbgrader's ``GetGrades`` and CSS header, ``instructor.scrub.ScrubHiddenTests``
(tracebacks and quoted hidden lines), then nbgrader's ``ClearHiddenTests`` (hidden test source),
then ``instructor.readable_feedback``'s equations as MathML and test cells titled by their task,
rendered with the course's template (``instructor/templates/course_feedback``, nbgrader's own
feedback page without its CDN MathJax).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from instructor.course import Course, CourseError, jupyter_env

FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "instructor.scrub.ScrubHiddenTests",
    "nbgrader.preprocessors.ClearHiddenTests",
    "instructor.readable_feedback.RenderMath",
    "instructor.readable_feedback.TitleTestCells",
]


def generate_feedback(course: Course, assignment: str,
                      students: list[str] | None = None) -> list[Path]:
    """Write ``feedback/<student>/<assignment>/*.html`` for graded students.

    Returns:
        The feedback folders written.
    """
    autograded = course.root / course.directories["autograded"]
    graded = sorted(p.name for p in autograded.iterdir() if (p / assignment).is_dir()) \
        if autograded.is_dir() else []
    wanted = graded if students is None else [s for s in students if s in graded]
    if not wanted:
        raise CourseError(f"nothing autograded for {assignment!r} in {autograded}: run "
                          f"python -m instructor autograde first")
    # one nbgrader call for everybody, or one per requested student (--student takes one id)
    calls = [[assignment, "--force"]] if students is None else \
        [[assignment, "--force", f"--student={s}"] for s in wanted]
    for args in calls:
        with tempfile.TemporaryDirectory(prefix="feedback-env-") as tmp:
            proc = subprocess.run([sys.executable, "-m", "instructor.feedback", *args],
                                  cwd=course.root, env=jupyter_env(Path(tmp)), capture_output=True,
                                  text=True)
        if proc.returncode != 0:
            failed = [line for line in proc.stderr.splitlines() if "| ERROR]" in line]
            raise CourseError("nbgrader generate_feedback failed:\n"
                              + "\n".join(failed[-5:] or proc.stderr.splitlines()[-15:]))
    return [course.folder("feedback", assignment, s) for s in wanted
            if course.folder("feedback", assignment, s).is_dir()]


def main() -> None:
    """nbgrader generate_feedback with ``FEEDBACK_PREPROCESSORS`` enforced."""
    from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp

    from instructor.readable_feedback import NBGRADER_TEMPLATES, TEMPLATE_NAME, TEMPLATES

    app = GenerateFeedbackApp.instance()
    app.initialize(sys.argv[1:])
    app.config.GenerateFeedback.preprocessors = list(FEEDBACK_PREPROCESSORS)
    app.config.GenerateFeedback.exporter_class = "instructor.readable_feedback.FeedbackExporter"
    app.config.HTMLExporter.template_name = TEMPLATE_NAME
    app.config.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
    app.start()


if __name__ == "__main__":
    main()
