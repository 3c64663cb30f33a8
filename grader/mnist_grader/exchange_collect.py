"""Formgrader's Collect and ``nbgrader collect`` without following a student's links or taking a folder in another's name.

nbgrader's own collect step (``nbgrader.exchange.default.collect``) copies each student's latest
inbound folder with ``shutil.copytree``, as the instructor: a symbolic link a student put there (to
the instructor's source notebook, the gradebook, ``/dev/zero``) is followed, and its target lands in
``submitted/`` as a regular file, and from there in that student's feedback. A folder named after
another student than its owner only earns a warning, and one folder name it cannot read stops the
collect for everybody.

The course's ``nbgrader_config.py`` names ``SafeCollect`` as ``c.ExchangeFactory.collect``. The
``collect`` command and Formgrader's Collect button (``NbGraderAPI.collect``) both build their
collect step from that factory, so both run this class. It

- takes, for each student, the latest inbound folder that ``mnist_grader.grading.inbound`` accepts
  (a real folder, owned by the student's Unix user, or on a single-user machine by the user who
  collects; a name nbgrader reads back as the same student). A refused folder is logged as an error,
  nothing of it is copied, and it never hides an older accepted folder of the same student, which is
  collected instead; the other students are collected as usual;
- copies it with ``mnist_grader.grading.intake`` (directory descriptors, ``O_NOFOLLOW``): links,
  devices, FIFOs, sockets and hard links are left out and logged as warnings, each with its path and
  why; caps on bytes, files and depth. The copy replaces an older one only once it is whole;
- skips, with a warning, a folder name it cannot read.

What else happens is nbgrader's own: ``--update``, ``--before-duedate``, the due date from the
gradebook, which submission replaces which, the messages. Not applied: ``CourseDirectory.ignore``,
``include``, ``max_file_size`` and ``groupshared`` (``nbgrader submit`` applied the patterns already,
and intake's caps take the place of the sizes).
"""
from __future__ import annotations

import fnmatch
import os
from collections import defaultdict
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import check_mode
from traitlets import Bool

from mnist_grader.grading.inbound import InboundSubmission, parse_inbound_name, submission_problem
from mnist_grader.grading.intake import IntakeError, IntakeLimits, replace_with_copy


class SafeCollect(ExchangeCollect):
    """nbgrader's collect step, with ownership refused rather than warned about and copies through intake."""

    check_owner = Bool(
        False,
        help="nbgrader's own owner check, which only warns. SafeCollect always refuses a folder "
             "whose owner is not the student it names (mnist_grader.grading.inbound), so this "
             "warning is off unless asked for.").tag(config=True)

    def init_src(self) -> None:
        """Choose each student's inbound folder to collect (``self.src_records``, nbgrader's form).

        Raises:
            ExchangeError: no course id, or the course's inbound folder is missing or unreadable
                (nbgrader's own messages).
        """
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        if not check_mode(self.inbound_path, read=True, execute=True):
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path}")
        self.duedate = self._duedate()
        self.src_records = []
        for student, submissions in sorted(self._inbound_by_student().items()):
            accepted = self._accepted(submissions)
            chosen = self._choose(accepted)
            if chosen is None:
                self.log.error("Nothing collected for %s: none of the %d inbound folder(s) in their "
                               "name was accepted (they can submit again from their own account)",
                               student, len(submissions))
                continue
            if any(s.timestamp > chosen.timestamp for s in submissions if s not in accepted):
                self.log.warning("Collecting %s for %s: a newer folder in their name was refused",
                                 chosen.name, student)
            self.src_records.append({"username": student, "filename": chosen.name,
                                     "timestamp": chosen.timestamp})

    def do_copy(self, src: str, dest: str, log=None) -> None:
        """Copy one inbound folder to ``dest`` through intake; a failure is logged and skips only
        this student (nbgrader's ``copy_files`` goes on with the others)."""
        try:
            report = replace_with_copy(Path(self.inbound_path), [os.path.basename(src)], Path(dest),
                                       IntakeLimits())
        except (IntakeError, OSError) as exc:
            self.log.error("%s was not collected: %s", src, exc)
            return
        for line in report.refused:
            self.log.warning("%s: left out %s", src, line)

    def _duedate(self):
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gradebook:
            try:
                return gradebook.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None

    def _inbound_by_student(self) -> dict[str, list[InboundSubmission]]:
        """The inbound folders of this assignment (of ``--student`` only, when given) by student."""
        assignment = self.coursedir.assignment_id
        pattern = self.coursedir.student_id or "*"  # a file glob, as for nbgrader's own collect
        found: dict[str, list[InboundSubmission]] = defaultdict(list)
        for name in sorted(os.listdir(self.inbound_path)):
            if name.startswith("."):
                continue  # never a submission (nbgrader's own collect does not see them either)
            submission = parse_inbound_name(name, assignment)
            if submission is None:
                if f"+{assignment}+" in name:
                    self.log.warning("Skipped %s: not a submission folder name nbgrader can read "
                                     "(<student>+%s+<timestamp>)", os.path.join(self.inbound_path, name),
                                     assignment)
                continue
            if fnmatch.fnmatchcase(submission.student, pattern):
                found[submission.student].append(submission)
        return found

    def _accepted(self, submissions: list[InboundSubmission]) -> list[InboundSubmission]:
        """The folders that may be taken as their student's work; each refusal logged as an error."""
        accepted = []
        for submission in submissions:
            problem = submission_problem(Path(self.inbound_path), submission, collector_uid=os.getuid())
            if problem:
                self.log.error("Not collected: %s: %s", os.path.join(self.inbound_path, submission.name),
                               problem)
            else:
                accepted.append(submission)
        return accepted

    def _choose(self, accepted: list[InboundSubmission]) -> InboundSubmission | None:
        """nbgrader's choice among one student's folders: the latest; with ``before_duedate`` and a
        due date, the latest before it if there is one."""
        newest_first = sorted(accepted, key=lambda s: s.timestamp, reverse=True)
        if self.before_duedate and self.duedate is not None:
            in_time = [s for s in newest_first if s.timestamp <= self.duedate]
            if in_time:
                return in_time[0]
        return newest_first[0] if newest_first else None
