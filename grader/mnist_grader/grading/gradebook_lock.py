"""Runs in the grading command (the parent): whether the course gradebook can be written now.

Read-only is an error before grading starts; a lock held by another program is waited for, for a
bounded and reported time.

SQLite lets one writer at a time change a database. Formgrader, another grading run or a
``sqlite3`` shell with an open transaction holds that lock; nbgrader's own connection gives up after
5 s with "database is locked" and a traceback. The grader instead checks before it starts that the
gradebook (and its folder, where SQLite writes its journal) can be written at all, and before each
write waits for the lock, says so once, and stops with a clear error when the wait runs out.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Callable

from mnist_grader.course import CourseError

#: how long the grader waits for another program's lock on the gradebook (seconds)
LOCK_WAIT_SECONDS = 60.0


class GradebookLocked(CourseError):
    """Another program kept the gradebook locked for longer than the grader waits."""


def is_locked_error(exc: BaseException) -> bool:
    """Whether an exception (sqlite3's or SQLAlchemy's wrapper of it) says the database is locked."""
    return "database is locked" in str(exc) or "database table is locked" in str(exc)


def check_writable(path: Path) -> None:
    """Check that grades can be written into the gradebook at ``path``, without changing it.

    Raises:
        CourseError: the file or its folder is read-only (or it is not a gradebook).
    """
    # a URI (mode=rw: never create it), percent-encoded so that "?" or "#" in a folder name is kept
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=0.1,
                         isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute(f"PRAGMA user_version = {int(version)}")  # a write, rolled back: nothing changes
        db.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        if is_locked_error(exc):
            return  # writable, only busy: wait_until_unlocked deals with that
        raise CourseError(f"cannot write the gradebook {path} ({exc}): grades would be lost, so "
                          f"nothing was graded. Make the file and its folder writable by this user "
                          f"(SQLite also writes a journal file next to it) and run again") from None
    except sqlite3.DatabaseError as exc:
        raise CourseError(f"{path} is not a usable SQLite gradebook ({exc})") from None
    finally:
        db.close()


def wait_until_unlocked(path: Path, timeout: float = LOCK_WAIT_SECONDS,
                        say: Callable[[str], None] | None = None) -> None:
    """Return as soon as a write transaction on the gradebook could start; wait up to ``timeout``.

    Args:
        path: the gradebook.
        timeout: seconds to wait for another program's lock.
        say: where the one "waiting" line goes (default: stderr).

    Raises:
        GradebookLocked: still locked after ``timeout`` seconds.
    """
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    deadline = time.monotonic() + timeout
    told = False
    while True:
        db = sqlite3.connect(str(path), timeout=min(1.0, max(0.01, deadline - time.monotonic())),
                             isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
            return
        except sqlite3.OperationalError as exc:
            if not is_locked_error(exc):
                raise
        finally:
            db.close()
        if not told:
            say(f"{path.name} is locked by another program (Formgrader, another grading run, an "
                f"open sqlite3 shell?); waiting up to {timeout:g} s")
            told = True
        if time.monotonic() >= deadline:
            raise GradebookLocked(
                f"{path} was still locked by another program after {timeout:g} s: close the "
                f"program holding it and run again (submissions merged so far are kept; the "
                f"others are graded again next time)")
