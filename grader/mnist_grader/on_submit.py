"""Autograde on submit: grade each new submission in the sandbox as it arrives, release its autograded part.

A service (a JupyterHub managed service on the course's hub, ``make hub HUB_ON_SUBMIT=1``, or run by
hand: ``python -m mnist_grader.on_submit --course-dir COURSE``) that looks at the exchange's inbound
folder every ``poll_seconds``. For every student whose latest complete submission (nbgrader's
``<student>+<assignment>+<timestamp>[+<random>]`` folder with its ``submission_secret.txt``, the
last file ``nbgrader submit`` writes) is newer than what was handled before, it

1. checks that the folder belongs to that student's Unix user (``mnist_grader.grading.inbound``: a
   student can create a folder named after somebody else in the write-only inbound) and collects it into
   ``submitted/<student>/<assignment>`` with ``mnist_grader.grading.intake`` (links, devices, FIFOs are never
   followed: the student wrote that folder);
2. grades it with the course's sandboxed grader (``mnist_grader.grading``: the student's kernel in
   bubblewrap, the hidden tests in the trusted run, score = the lower verdict), the submissions that
   arrived together in one run, one worker each;
3. writes feedback on the AUTOGRADED part only (``mnist_grader.provisional_feedback``: the written
   answer says "awaiting hand grading", never 0; the page never held a hidden test) and releases it
   to that student only (``nbgrader release_feedback --student``). A submission held for review by
   the policy gets no early feedback (its scores wait for a grader too).

The instructor's later hand grade and regular feedback (``python -m mnist_grader feedback``, then
release) replace the page: it is the same file of the same submission. A resubmission is graded
again (the latest counts). A broken submission is logged with the reason and the service goes on.

What was handled is remembered in ``<course>/.on_submit.json`` (student -> inbound folder name), so a
restart neither grades old submissions again nor misses new ones; without that file, a submission
already autograded (an autograded timestamp as new as it) counts as handled.

Run as root (like ``make hub`` and ``python -m mnist_grader autograde``): the grader then runs every
student's kernel as a uid of its own; what it writes into the course (submitted, autograded and
feedback folders, the gradebook) is handed to the course folder's owner, and the feedback is
released as that owner, so the instructor's Formgrader and nbgrader commands keep working on both.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from mnist_grader.course import Course, CourseError, load_course
from mnist_grader.grading.inbound import InboundSubmission, parse_inbound_name, submission_problem
from mnist_grader.grading.intake import IntakeError, IntakeLimits, replace_with_copy

log = logging.getLogger("mnist_grader.on_submit")

STATE_FILE = ".on_submit.json"
#: nbgrader submit writes this last (after the files and timestamp.txt): the folder is complete
COMPLETE_MARKER = "submission_secret.txt"
#: a marker never longer than this (nbgrader writes 128 hex digits) is read; anything else is refused
MAX_MARKER_BYTES = 1024


@dataclass
class Outcome:
    """What the service did with one submission."""

    student: str
    name: str
    released: bool = False
    score: float | None = None
    max_score: float | None = None
    reason: str = ""  # why nothing was released
    flags: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall seconds


def inbound_folder(course: Course) -> Path:
    """The exchange's inbound folder of the course (``c.Exchange.root`` in nbgrader_config.py)."""
    root = course.config.get("Exchange", {}).get("root", "/usr/local/share/nbgrader/exchange")
    return Path(root) / course.course_id / "inbound"


def _complete(inbound: Path, name: str) -> bool:
    """Whether ``nbgrader submit`` has finished writing the folder (its last file is there)."""
    try:
        info = os.stat(inbound / name / COMPLETE_MARKER, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and 0 < info.st_size <= MAX_MARKER_BYTES


def latest_submissions(inbound: Path, assignment: str) -> dict[str, InboundSubmission]:
    """Each student's latest complete submission of ``assignment`` in ``inbound``."""
    latest: dict[str, InboundSubmission] = {}
    try:
        names = os.listdir(inbound)
    except FileNotFoundError:
        return latest
    for name in names:
        found = parse_inbound_name(name, assignment)
        if found is None or not _complete(inbound, name):
            continue
        if found.student not in latest or found.timestamp > latest[found.student].timestamp:
            latest[found.student] = found
    return latest


def unreadable_notebooks(folder: Path) -> list[str]:
    """What is wrong with each notebook in ``folder`` that nbformat cannot read (a clearer reason for
    the log than nbgrader's "error processing assignment")."""
    import nbformat

    problems = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nbformat.read(path, as_version=4)
        except Exception as exc:  # noqa: BLE001 (any reason nbformat gives is the message)
            problems.append(f"{path.name} is not a notebook nbformat can read ({type(exc).__name__}: "
                            f"{str(exc)[:160]})")
    if not problems and not any(folder.glob("*.ipynb")):
        problems.append("the submission has no notebook")
    return problems


class StateFile:
    """Which inbound folder was last handled for each student (``<course>/.on_submit.json``)."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.handled: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.handled = {}

    def mark(self, student: str, name: str) -> None:
        self.handled[student] = name
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.handled, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


def _autograded_timestamp(course: Course, assignment: str, student: str) -> datetime.datetime | None:
    from nbgrader.utils import parse_utc

    path = course.folder("autograded", assignment, student) / "timestamp.txt"
    try:
        return parse_utc(path.read_text().strip())
    except (OSError, ValueError, TypeError):
        return None


def pending(course: Course, assignment: str, state: StateFile) -> list[InboundSubmission]:
    """The latest submissions not handled yet, oldest first."""
    found = []
    for student, submission in latest_submissions(inbound_folder(course), assignment).items():
        if state.handled.get(student) == submission.name:
            continue
        if student not in state.handled:
            graded = _autograded_timestamp(course, assignment, student)
            if graded is not None and graded >= submission.timestamp:
                state.mark(student, submission.name)  # graded before this service saw it
                continue
        found.append(submission)
    return sorted(found, key=lambda s: s.timestamp)


def collect(course: Course, assignment: str, submission: InboundSubmission,
            limits: IntakeLimits) -> list[str]:
    """Copy the submission into ``submitted/<student>/<assignment>`` (replacing an older one).

    Returns:
        The entries intake left out ("PATH: why").

    Raises:
        IntakeError: the folder as a whole cannot be taken in.
    """
    final = course.folder("submitted", assignment, submission.student)
    final.parent.mkdir(parents=True, exist_ok=True)
    return replace_with_copy(inbound_folder(course), [submission.name], final, limits).refused


def give_to_owner(path: Path, uid: int, gid: int, recursive: bool = True) -> None:
    """Hand what the service wrote to the course folder's owner (links are never followed)."""
    if os.geteuid() != 0 or uid == 0 or not os.path.lexists(path):
        return
    os.chown(path, uid, gid, follow_symlinks=False)
    if recursive and path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


@contextlib.contextmanager
def acting_as(uid: int, gid: int) -> Iterator[None]:
    """Be ``uid``/``gid`` (real and effective ids, no other groups) for a while, as root; the saved
    ids stay root's, to come back. nbgrader's exchange checks who owns its folders by the real uid."""
    if os.geteuid() != 0 or uid == 0:
        yield
        return
    groups, gids, uids = os.getgroups(), os.getresgid(), os.getresuid()
    os.setgroups([gid])
    os.setresgid(gid, gid, gids[2])
    os.setresuid(uid, uid, uids[2])
    try:
        yield
    finally:
        os.setresuid(*uids)
        os.setresgid(*gids)
        os.setgroups(groups)


def release_feedback(course: Course, assignment: str, student: str) -> None:
    """nbgrader's ``release_feedback --student``, in this process (no interpreter start per release)
    and as the course's owner (whose exchange folders these are, as when they release feedback
    themselves): the student's feedback pages into the exchange, named after the submission's
    secret, so that only that student's ``fetch_feedback`` finds them.

    Raises:
        CourseError: nbgrader refused; the message says why.
    """
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError
    from nbgrader.exchange.default.release_feedback import ExchangeReleaseFeedback

    config = course.student_config(assignment, student)
    coursedir = CourseDirectory(config=config)
    owner = course.root.stat()
    try:
        with acting_as(owner.st_uid, owner.st_gid):
            ExchangeReleaseFeedback(coursedir=coursedir, config=config).start()
    except (ExchangeError, OSError) as exc:
        raise CourseError(f"nbgrader release_feedback failed for {student}: {exc}") from exc


def autograded_part(course: Course, assignment: str, student: str) -> tuple[float, float]:
    """(score, max score) of the submission's grades that need no grader: what a student may see."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gradebook:
        grades = [g for nb in gradebook.find_submission(assignment, student).notebooks for g in nb.grades
                  if not g.needs_manual_grade]
        return sum(g.score or 0.0 for g in grades), sum(g.max_score or 0.0 for g in grades)


class OnSubmitService:
    """The watcher: ``run_once`` handles what is pending now, ``serve`` repeats it until stopped."""

    def __init__(self, course: Course, assignment: str, scratch_root: Path, options=None,
                 poll_seconds: float = 1.0):
        """``scratch_root``: a private folder for the grading runs' scratch courses (other grading
        runs on the machine tidy the shared temp folder after runs they believe dead; the service
        keeps its own apart)."""
        from mnist_grader.grading.pool import GradingOptions

        self.course = course
        self.assignment = assignment
        self.options = dataclasses.replace(options or GradingOptions(progress=False),
                                           scratch_root=scratch_root)
        self.poll_seconds = poll_seconds
        self.state = StateFile(course.root / STATE_FILE)
        owner = course.root.stat()
        self.owner = (owner.st_uid, owner.st_gid)
        self.stopping = threading.Event()

    def run_once(self) -> list[Outcome]:
        """Collect, grade, write and release feedback for every submission pending now."""
        batch = pending(self.course, self.assignment, self.state)
        outcomes, to_grade = [], []
        for submission in batch:
            outcome = Outcome(student=submission.student, name=submission.name)
            outcomes.append(outcome)
            log.info("new submission from %s: %s", submission.student, submission.name)
            problem = submission_problem(inbound_folder(self.course), submission)
            if not problem:
                try:
                    outcome.flags = [f"left out {line}" for line in
                                     collect(self.course, self.assignment, submission, self.options.intake)]
                except (IntakeError, OSError) as exc:
                    problem = f"could not be collected: {exc}"
            if problem:
                outcome.reason = problem
                self._done(submission)
                continue
            to_grade.append((submission, outcome))
        if to_grade:
            self._grade_and_release(to_grade)
        for outcome in outcomes:
            self._log(outcome)
        return outcomes

    def _grade_and_release(self, batch: list[tuple[InboundSubmission, Outcome]]) -> None:
        from mnist_grader.grading.pool import grade_assignment
        from mnist_grader.feedback import write_student_feedback

        students = [submission.student for submission, _ in batch]
        options = dataclasses.replace(self.options,
                                      workers=max(1, min(len(students), os.cpu_count() or 1)))
        started = time.monotonic()
        try:
            results = {r.student: r for r in grade_assignment(self.course, self.assignment, options,
                                                             students=students)}
        except Exception as exc:  # the service outlives any one batch
            log.exception("grading %s failed", ", ".join(students))
            for submission, outcome in batch:
                outcome.reason = f"grading failed: {exc}"
                self._done(submission)
            self._give_back(students)
            return
        graded_in = time.monotonic() - started  # the batch's, for each of its submissions
        for submission, outcome in batch:
            outcome.seconds["grading"] = graded_in
            result = results.get(submission.student)
            if result is None or not result.ok:
                why = unreadable_notebooks(self.course.folder("submitted", self.assignment, submission.student))
                outcome.reason = "could not be graded: " + "; ".join(
                    why or [result.reason if result else "no result"])
            elif result.held:
                outcome.reason = ("held for review by a grader (code outside the lab's whitelist): "
                                  "no early feedback")
            else:
                outcome.flags += result.flags
                try:
                    written = time.monotonic()
                    write_student_feedback(self.course, self.assignment, submission.student,
                                           autograded_part_only=True)
                    released = time.monotonic()
                    outcome.seconds["feedback"] = released - written
                    release_feedback(self.course, self.assignment, submission.student)
                    outcome.seconds["release"] = time.monotonic() - released
                    outcome.released = True
                    outcome.score, outcome.max_score = autograded_part(
                        self.course, self.assignment, submission.student)
                except (CourseError, OSError) as exc:
                    outcome.reason = f"feedback not released: {exc}"
            self._done(submission)
        self._give_back(students)

    def _give_back(self, students: list[str]) -> None:
        """What this round wrote into the course and the exchange, to the course's owner."""
        for kind in ("submitted", "autograded", "feedback"):
            folder = self.course.root / self.course.directories[kind]
            give_to_owner(folder, *self.owner, recursive=False)
            for student in students:
                give_to_owner(folder / student, *self.owner)
        give_to_owner(self.course.gradebook_path, *self.owner)
        give_to_owner(self.course.root / STATE_FILE, *self.owner)

    def _done(self, submission: InboundSubmission) -> None:
        self.state.mark(submission.student, submission.name)

    @staticmethod
    def _log(outcome: Outcome) -> None:
        if outcome.released:
            log.info("%s: %g / %g autograded points; feedback released to %s (%s; %s)", outcome.name,
                     outcome.score or 0.0, outcome.max_score or 0.0, outcome.student,
                     "; ".join(outcome.flags) or "no flags",
                     ", ".join(f"{k} {v:.1f} s" for k, v in outcome.seconds.items()))
        else:
            log.warning("%s: nothing released to %s: %s", outcome.name, outcome.student, outcome.reason)

    def serve(self) -> None:
        """Poll until ``stopping`` is set (SIGTERM/SIGINT in ``main``) or the process that started this
        one (the hub) is gone; no failing batch ends the loop."""
        parent = os.getppid()
        log.info("watching %s for %s every %g s", inbound_folder(self.course), self.assignment,
                 self.poll_seconds)
        while not self.stopping.is_set() and os.getppid() == parent:
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 (logged; the next poll tries again)
                log.exception("the service's poll failed; trying again")
            self.stopping.wait(self.poll_seconds)
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    from mnist_grader.__main__ import DEFAULT_ASSIGNMENT

    parser = argparse.ArgumentParser(prog="python -m mnist_grader.on_submit",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--course-dir", default=".", help="the course folder (nbgrader_config.py)")
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    parser.add_argument("--poll-seconds", type=float, default=1.0,
                        help="how often to look at the inbound folder (default: %(default)s)")
    parser.add_argument("--once", action="store_true", help="handle what is pending now, then stop")
    parser.add_argument("--log-file", type=Path,
                        help="append the log to this file (mode 600: it names students and their "
                             "scores) instead of standard error")
    args = parser.parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        os.close(os.open(args.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handlers = [logging.FileHandler(args.log_file)]
    logging.basicConfig(level=logging.INFO, handlers=handlers,
                        format="%(asctime)s on-submit %(levelname)s %(message)s")
    try:
        course = load_course(args.course_dir)
        course.source_notebooks(args.assignment)  # the assignment exists
    except CourseError as exc:
        log.error("%s", exc)
        return 2
    scratch_root = Path(tempfile.mkdtemp(prefix="on-submit-"))
    try:
        service = OnSubmitService(course, args.assignment, scratch_root, poll_seconds=args.poll_seconds)
        if args.once:
            service.run_once()
            return 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: service.stopping.set())
        service.serve()
        return 0
    finally:
        shutil.rmtree(scratch_root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
