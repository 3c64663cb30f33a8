"""Runs in the grading command (the parent): what a killed grading run left, found and repaired.

Grading and the gradebook merge act as one unit, whatever moment the grading command is killed at.

The grader writes two things per student: rows in ``gradebook.db`` (one transaction,
``mnist_grader.grading.merge``) and the autograded notebooks in ``autograded/<student>/<assignment>/``. They
must agree: ``feedback`` and Formgrader read both. So the notebooks are copied first into a staging
folder beside the real one (``.<assignment>.staging-<pid>``), the merge commits, and only then the
staged files are moved into place (``publish_staged``). A SIGKILL can still land between two of
those steps; the next run repairs that before it grades (``reconcile``): a staging folder of a dead
run, or an autograded folder with no gradebook row, is removed and that student is graded again.

Scratch folders (``grading-*``, one per run) hold an owner file that the run which made them keeps
locked (``flock``) for as long as it lives (``mark_owner``); the kernel drops the lock when that
process ends, however it ends. The next run removes the folders whose lock it can take
(``remove_dead_runs``) and never touches a live run's folder, whoever started it: a lock, unlike a
pid, means the same in every pid namespace and cannot be reused by another process.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import psutil

from mnist_grader.course import Course

OWNER_FILE = "owner"
#: a grading run's scratch folder is ``<scratch root>/grading-<8 random characters>`` (``mkdtemp``)
RUN_PREFIX = "grading-"
STAGING_MARK = ".staging-"


def _start_time(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), None when it does not exist; a pid
    reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[19]


def owner_token(pid: int | None = None) -> str:
    """"PID STARTTIME" of a process (default: this one), written into the owner file for people."""
    pid = os.getpid() if pid is None else pid
    return f"{pid} {_start_time(pid)}"


def mark_owner(run_dir: Path) -> int:
    """Mark a scratch run folder as this process's: its owner file, locked until this process ends.

    Returns:
        The locked file descriptor: keep it open for the whole run (closing it gives the folder up).
    """
    fd = os.open(run_dir / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, owner_token().encode())
    return fd


def _owner_gone(owner_file: str) -> bool:
    """Whether nobody holds the lock of a run folder's owner file (its run has ended)."""
    try:
        fd = os.open(owner_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # no owner mark (not made by this grader) or not ours to read: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def remove_dead_runs(parent: Path, prefix: str = RUN_PREFIX) -> list[Path]:
    """Remove the scratch run folders in ``parent`` whose owning process is gone.

    Folders without an owner mark (not made by this grader, or by an older one) are left alone.

    Returns:
        The folders removed.
    """
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        if _owner_gone(os.path.join(entry.path, OWNER_FILE)):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(Path(entry.path))
    return removed


def staging_folder(final: Path) -> Path:
    """Where the autograded files of ``final`` (autograded/<student>/<assignment>) are staged by
    this process until the gradebook has committed them."""
    return final.parent / f".{final.name}{STAGING_MARK}{os.getpid()}"


def publish_staged(final: Path) -> None:
    """Move the staged files into ``final`` (after the gradebook commit), then drop the staging."""
    staging = staging_folder(final)
    if not staging.is_dir():
        return
    final.mkdir(parents=True, exist_ok=True)
    for entry in sorted(staging.iterdir()):
        os.replace(entry, final / entry.name)
    staging.rmdir()


def discard_staged(final: Path) -> None:
    """Drop this process's staged files of ``final`` (the merge did not commit)."""
    shutil.rmtree(staging_folder(final), ignore_errors=True)


def gradebook_students(course: Course, assignment: str) -> set[str]:
    """Students with a submission row of ``assignment`` in the gradebook."""
    uri = f"{course.gradebook_path.absolute().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=60)) as db:
        rows = db.execute("SELECT submitted_assignment.student_id FROM submitted_assignment "
                          "JOIN assignment ON submitted_assignment.assignment_id = assignment.id "
                          "WHERE assignment.name = ?", (assignment,)).fetchall()
    return {student for (student,) in rows}


def reconcile(course: Course, assignment: str) -> dict[str, str]:
    """Repair what a killed run left between grading and merging.

    Removes staging folders of dead runs and autograded folders that have no gradebook row.

    Returns:
        student -> what was repaired, for each student who must be graded again.
    """
    autograded = course.root / course.directories["autograded"]
    if not autograded.is_dir():
        return {}
    in_gradebook = gradebook_students(course, assignment)
    repaired: dict[str, str] = {}
    staging_prefix = f".{assignment}{STAGING_MARK}"
    for student_dir in sorted(autograded.iterdir()):
        if not student_dir.is_dir() or student_dir.is_symlink():
            continue
        student = student_dir.name
        for entry in student_dir.iterdir():
            if entry.name.startswith(staging_prefix):
                pid = entry.name[len(staging_prefix):]
                if pid.isdigit() and psutil.pid_exists(int(pid)) and int(pid) != os.getpid():
                    continue  # a live run is merging it right now
                shutil.rmtree(entry, ignore_errors=True)
                repaired[student] = "a grading run was killed while merging it"
        final = student_dir / assignment
        if final.is_dir() and student not in in_gradebook:
            shutil.rmtree(final, ignore_errors=True)
            repaired[student] = "autograded notebooks without a gradebook row (a killed run)"
    return repaired
