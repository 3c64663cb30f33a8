"""Which folders of an nbgrader exchange's inbound may be taken as whose submission.

``nbgrader submit`` copies a student's work into the exchange's inbound folder as
``<student>+<assignment>+<timestamp>[+<random>]``. Every student may create entries there, so the
name is a claim, not a proof: a student can create a folder named after somebody else, or put a
symbolic link or a file there instead of a folder. Everything that collects from the inbound (the
course's Collect, ``mnist_grader.exchange_collect``, and the on-submit service,
``mnist_grader.on_submit``) asks ``submission_problem`` before it copies anything.

Who may claim a name: a real folder (never a link) owned by the Unix user of the student's name.
On a single-user machine (``make exchange``, ``make demo``: one Unix user plays every student) no
Unix user has the student's name; there the caller may pass the uid of the user who collects, whose
folders then count (nobody else can create a folder owned by them). A name must also be one nbgrader
reads back as the same student (``mnist_grader.grading.student_ids``), and never ``.`` or ``..``,
which would put the copy beside ``submitted/`` instead of in it.
"""
from __future__ import annotations

import datetime
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from mnist_grader.grading.student_ids import student_id_problem


@dataclass(frozen=True)
class InboundSubmission:
    """One folder in the exchange's inbound: who it claims to be by, its name there, when."""

    student: str
    name: str  # the folder's name in inbound
    timestamp: datetime.datetime


def parse_inbound_name(name: str, assignment: str) -> InboundSubmission | None:
    """Read a folder name ``<student>+<assignment>+<timestamp>[+<random>]`` (``nbgrader submit``'s).

    Args:
        name: an entry of the inbound folder.
        assignment: the assignment being collected.

    Returns:
        The submission it names, or None for a name of another assignment or one that does not
        parse (no timestamp nbgrader can read).
    """
    from nbgrader.utils import parse_utc

    for parts in (name.rsplit("+", 3), name.rsplit("+", 2)):  # with nbgrader's random part, without
        if len(parts) >= 3 and parts[0] and parts[1] == assignment:
            try:
                return InboundSubmission(student=parts[0], name=name, timestamp=parse_utc(parts[2]))
            except (ValueError, OverflowError, TypeError):
                continue
    return None


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def ownership_problem(inbound: Path, submission: InboundSubmission,
                      collector_uid: int | None = None) -> str:
    """Why the folder may not be taken as the named student's work, or "" when it may.

    Args:
        inbound: the exchange's inbound folder.
        submission: one of its entries.
        collector_uid: the user who collects, whose folders count for a student who is no user of
            this machine (the single-user exchange); None: such a student is refused.

    Returns:
        A sentence saying what is wrong; "" when the folder is a real folder owned by the student's
        Unix user (or, see ``collector_uid``, by the collecting user).
    """
    try:
        info = os.stat(inbound / submission.name, follow_symlinks=False)
    except OSError as exc:
        return f"the inbound folder cannot be read ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "the inbound entry is not a folder (a link or a file): refused"
    try:
        uid = pwd.getpwnam(submission.student).pw_uid
    except KeyError:
        if collector_uid is not None and info.st_uid == collector_uid:
            return ""  # one Unix user plays every student: only they can have made this folder
        owner = _user_name(info.st_uid)
        if collector_uid is None:
            return f"names the student {submission.student!r}, who is no user of this machine: refused"
        return (f"names the student {submission.student!r}, who is no user of this machine, and "
                f"belongs to {owner}, not to {_user_name(collector_uid)} who collects: refused")
    if info.st_uid != uid:
        return (f"claims to be by {submission.student} but belongs to {_user_name(info.st_uid)}: "
                f"refused (a submission in another student's name)")
    return ""


def submission_problem(inbound: Path, submission: InboundSubmission,
                       collector_uid: int | None = None) -> str:
    """Why the inbound folder may not be collected as ``submission.student``'s, or "" when it may:
    its name (``.``/``..``, or an id nbgrader would read as another student), then its owner
    (``ownership_problem``, same arguments)."""
    if submission.student in (".", ".."):
        return (f"names the student {submission.student!r}, a path rather than a name (the copy "
                f"would land outside submitted/): refused")
    return (student_id_problem(submission.student, rename="refused (the student submits again from "
                                                          "their own account)")
            or ownership_problem(inbound, submission, collector_uid))
