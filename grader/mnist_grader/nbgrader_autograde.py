"""nbgrader's own Autograde (``nbgrader autograde``, Formgrader's Autograde button) through the sandboxed grader.

nbgrader builds its Autograde converter itself (the ``autograde`` command and ``NbGraderAPI``, which
Formgrader calls, both name the class), so the hook is the converter's configurable preprocessor
lists. With ``SANITIZE_PREPROCESSORS`` and ``AUTOGRADE_PREPROCESSORS`` in the course's
``nbgrader_config.py`` nbgrader never executes a student's notebook itself: for the first notebook
of a submission ``SandboxedAutograde`` runs ``mnist_grader.grading.pool.grade_assignment`` for that
(assignment, student), which is what ``python -m mnist_grader autograde --student ID`` does (the
scratch course, the student's kernel in its sandbox with the visible tests only, the trusted run of
the whole test cells outside it, the merge into the real gradebook with the lower of both verdicts
and the holds, the annotated autograded notebooks). It then gives nbgrader the notebooks that run
wrote, one per call, and nbgrader writes them where they already are. The list has no
``SaveAutoGrades``, so nothing nbgrader does afterwards changes a score; and no ``OverwriteCells``
in the real course (the scratch course restores cells from a gradebook without hidden tests), so
no hidden test is ever put into a notebook here.

Before any autograde step, nbgrader copies the student's other files (not the notebooks) into
``autograded/`` as the instructor, following links (``init_assignment``): a link to the source
notebook would be copied, one to ``/dev/zero`` would fill the disk. nbgrader calls its
``pre_convert_hook`` just before that copy, so the course's ``nbgrader_config.py`` names
``refuse_unsafe_submission`` there: a submitted folder holding anything but plain files and folders
(``mnist_grader.grading.intake.check_submission``, intake's rules) is refused with the reason and
nothing of it is copied; the other students are graded. (The course's Collect never puts a link into
``submitted/``; a folder filled some other way can hold one.) Afterwards this step removes what
nbgrader copied anyway (the sandboxed grader publishes notebooks and the timestamp only).
``python -m mnist_grader autograde`` never follows a link (``mnist_grader.grading.intake``).

The scratch course's own ``nbgrader_config.py`` sets the preprocessor lists back to nbgrader's
executing ones (``mnist_grader.grading.pool``), so the sandboxed run never calls this class again.
"""
from __future__ import annotations

import os
import shutil
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Float, Int

from mnist_grader.course import CourseError, load_course
from mnist_grader.grading.intake import IntakeError, check_submission

#: what the course's nbgrader_config.py sets (as strings: no import while the config loads)
SANITIZE_PREPROCESSORS: list[str] = []
AUTOGRADE_PREPROCESSORS = ["mnist_grader.nbgrader_autograde.SandboxedAutograde"]
#: the instructor's Jupyter server's ``ServerApp.logging_config``. Formgrader shows what its server's
#: logger records while a command runs, and traitlets keeps that logger at DEBUG (only the console
#: filters): every request the server logs meanwhile would be in the Autograde log. INFO and up only.
QUIET_SERVER_LOGGING = {"loggers": {"ServerApp": {"level": "INFO"}}}


class SandboxedGradingError(Exception):
    """The sandboxed grader could not grade a submission; nbgrader reports it as a failed autograde."""


class UnsafeSubmissionError(Exception):
    """A submitted folder holds more than plain files and folders; that student is not graded."""


class UnsafeSubmissionAbort(BaseException):
    """``UnsafeSubmissionError`` where nbgrader's converter could not be found: nbgrader swallows an
    ordinary exception from its pre-convert hook, so this one stops the whole run instead."""


def refuse_unsafe_submission(assignment: str, student: str, notebooks: list[str]) -> None:
    """nbgrader's ``Autograde.pre_convert_hook``: refuse a submitted folder before nbgrader copies it
    if it holds anything but plain files and folders (a link, a device, a FIFO, a hard link...).

    nbgrader calls the hook for each submission just before ``init_assignment`` (the copy, following
    links) and logs what the hook raises at INFO and goes on. So the refusal goes to the hook's
    caller, nbgrader's converter: its ``init_assignment`` for this submission raises
    ``UnsafeSubmissionError`` instead of copying, which nbgrader reports as a failed submission
    before it goes on with the next student.

    Args (nbgrader passes them as keywords):
        assignment, student: nbgrader's ``CourseDirectory`` ids (``*`` when grading everybody).
        notebooks: the submission's notebooks, in ``submitted/<student>/<assignment>/``.

    Raises:
        UnsafeSubmissionAbort: the folder is refused and nbgrader's converter was not found.
    """
    if not notebooks:
        return
    folder = Path(os.path.abspath(notebooks[0])).parent
    try:
        problems = check_submission(folder.parent.parent, [folder.parent.name, folder.name]).refused
    except (IntakeError, OSError) as exc:
        problems = [str(exc)]
    if not problems:
        return
    owner, submitted = folder.parent.name, folder.parent.parent
    message = (f"{owner}'s submission {folder} is not graded: it holds what is not a plain file or "
               f"folder, and nbgrader's autograde would copy it as the instructor, following links:\n"
               + "\n".join(f"  - {line}" for line in problems) +
               f"\nWhat to do: take {owner}'s folder out of {submitted} (where it is a link, remove "
               f"the link, not what it points to), collect the submission again with the course's "
               f"Collect (Formgrader's Collect or `nbgrader collect`, with nbgrader_config.py's "
               f"c.ExchangeFactory.collect), which leaves links out, and autograde it again.")
    converter = _converter_calling(notebooks)
    if converter is None:
        raise UnsafeSubmissionAbort(message)
    converter.log.error("%s", message)
    _refuse_next_copy(converter, UnsafeSubmissionError(
        f"{owner}'s submission was refused before nbgrader copied it: see the error above"))


def _converter_calling(notebooks: list[str]):
    """nbgrader's converter whose ``run_pre_convert_hook`` is calling the hook (it passes its own
    ``notebooks`` list), or None."""
    from nbgrader.converters.base import BaseConverter

    frame = sys._getframe(2)  # refuse_unsafe_submission's caller
    for _ in range(4):
        if frame is None:
            return None
        caller = frame.f_locals.get("self")
        if isinstance(caller, BaseConverter) and caller.notebooks is notebooks:
            return caller
        frame = frame.f_back
    return None


def _refuse_next_copy(converter, error: Exception) -> None:
    """Make the converter's next ``init_assignment`` (the one nbgrader calls right after the hook)
    raise ``error`` instead of copying; the one after is nbgrader's own again."""
    def refuse(assignment_id: str, student_id: str) -> None:
        del converter.init_assignment
        raise error

    converter.init_assignment = refuse


@dataclass
class _GradedSubmission:
    """The autograded notebooks of one submission, handed to nbgrader one by one."""

    notebooks: dict[str, nbformat.NotebookNode] = field(default_factory=dict)


# converter -> (assignment, student) -> what is left to hand over. Keyed by nbgrader's converter, one
# per `nbgrader autograde` or Formgrader click: each run grades afresh, even in a long-lived server.
_RUNS: "weakref.WeakKeyDictionary[object, dict[tuple[str, str], _GradedSubmission]]" = \
    weakref.WeakKeyDictionary()


class SandboxedAutograde(Preprocessor):
    """nbgrader's autograde step, done by ``mnist_grader.grading.pool`` for the whole submission."""

    # always on, and not configurable: switched off, nbgrader would write ungraded notebooks
    enabled = Bool(True)
    wall_seconds = Int(600, help="wall-clock limit for grading one submission").tag(config=True)
    memory_mb = Int(4096, help="address-space limit of the student's kernel (MiB)").tag(config=True)
    cpu_seconds = Int(600, help="CPU-time limit of the student's kernel").tag(config=True)
    gradebook_wait = Float(60.0, help="seconds to wait for another program's lock on the "
                                      "gradebook").tag(config=True)

    def preprocess(self, nb, resources):
        """Grade the submission (on its first notebook) and return this notebook as graded.

        Raises:
            SandboxedGradingError: the submission could not be graded (nbgrader then counts it as
                failed and says why), or this is not nbgrader's Autograde.
        """
        info = resources["nbgrader"]
        assignment, student, notebook = info["assignment"], info["student"], info["notebook"]
        converter = self._converter()
        graded = _RUNS.setdefault(converter, {})
        key = (assignment, student)
        if key not in graded:
            graded[key] = self._grade(converter, assignment, student, info["db_url"])
        submission = graded[key]
        if notebook not in submission.notebooks:
            raise SandboxedGradingError(
                f"the sandboxed grader wrote no autograded {notebook}.ipynb for {student}: "
                f"was it submitted under another name?")
        result = submission.notebooks.pop(notebook)
        if not submission.notebooks:
            del graded[key]
        return result, resources

    def _converter(self):
        converter = getattr(self.parent, "parent", None)
        if converter is None or not hasattr(converter, "coursedir"):
            raise SandboxedGradingError("SandboxedAutograde is a step of nbgrader's Autograde: name "
                                        "it in c.Autograde.autograde_preprocessors")
        return converter

    def _grade(self, converter, assignment: str, student: str, db_url: str) -> _GradedSubmission:
        from mnist_grader.grading.pool import BWRAP_MISSING, GradingOptions, grade_assignment
        from mnist_grader.grading.sandbox import Limits, find_bwrap

        try:
            course = load_course(converter.coursedir.root)
        except CourseError as exc:
            raise SandboxedGradingError(str(exc)) from None
        if course.db_url != db_url:
            raise SandboxedGradingError(
                f"nbgrader's gradebook here is {db_url} but the course's nbgrader_config.py in "
                f"{course.root} names {course.db_url}: configure the gradebook in that file only")
        if find_bwrap() is None:
            self.log.warning(BWRAP_MISSING)
        options = GradingOptions(
            workers=1, progress=False, fork_server=False, gradebook_wait=self.gradebook_wait,
            limits=Limits(wall_seconds=self.wall_seconds, memory_mb=self.memory_mb,
                          cpu_seconds=self.cpu_seconds))
        self.log.info("Grading %s of %s in the sandbox (mnist_grader), with the hidden tests in "
                      "a trusted run", assignment, student)
        try:
            results = grade_assignment(course, assignment, options, students=[student])
        except CourseError as exc:
            raise SandboxedGradingError(str(exc)) from None
        # (it also grades again any student a killed run had left half-merged)
        result = next(r for r in results if r.student == student)
        if not result.ok:
            raise SandboxedGradingError(f"the sandboxed grader could not grade {student}: "
                                        f"{result.reason}")
        status = "HELD at 0 for review" if result.held else "graded"
        self.log.info("%s: %s/%s, %s in %.1f s (sandbox uid %s)", student, _points(result.score),
                      _points(result.max_score), status, result.seconds, result.sandbox_uid)
        for flag in result.flags:
            self.log.warning("%s flagged for review: %s", student, flag)
        folder = course.folder("autograded", assignment, student)
        _keep_only_published(folder)
        return _GradedSubmission({path.stem: nbformat.read(str(path), as_version=4)
                                  for path in sorted(folder.glob("*.ipynb"))})


def _keep_only_published(folder: Path) -> None:
    """Remove from an autograded folder what nbgrader copied there itself before this step: the
    student's other files (followed through links: nbgrader reads them as the instructor) and the
    source's, which the sandboxed grader never publishes. Left: what the grader published (its
    notebooks, the timestamp and submission_secret.txt, which names the file that nbgrader's
    release_feedback publishes)."""
    for entry in folder.iterdir():
        if entry.is_file() and not entry.is_symlink() and (
                entry.suffix == ".ipynb" or entry.name in ("timestamp.txt", "submission_secret.txt")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def is_configured(config) -> bool:
    """Whether an nbgrader config sends Autograde through ``SandboxedAutograde``."""
    autograde = config.get("Autograde", {})
    return (list(autograde.get("autograde_preprocessors", [])) == AUTOGRADE_PREPROCESSORS
            and list(autograde.get("sanitize_preprocessors", [None])) == SANITIZE_PREPROCESSORS)


def plain_nbgrader_config() -> str:
    """``nbgrader_config.py`` lines that give ``nbgrader autograde`` back nbgrader's own steps (the
    student's notebook run in an unsandboxed kernel with the hidden tests in it): for benchmarks and
    tests that measure plain nbgrader on purpose, never for grading students."""
    from nbgrader.converters import Autograde

    traits = Autograde.class_traits()
    lines = ["# plain nbgrader, on purpose (mnist_grader.nbgrader_autograde.plain_nbgrader_config)"]
    for name in ("sanitize_preprocessors", "autograde_preprocessors"):
        steps = [f"{step.__module__}.{step.__name__}" for step in traits[name].default()]
        lines.append(f"c.Autograde.{name} = {steps!r}")
    return "\n" + "\n".join(lines) + "\n"
