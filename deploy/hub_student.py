"""A hub student's side of nbgrader's exchange, run as that student's Unix user: fetch, submit, feedback.

What a student does with **Nbgrader > Assignment List** (Fetch, Submit, Fetch Feedback), as the same
nbgrader commands run as the student (uid, home, the users' environment), so that scripts and tests
can drive a hub's course without a browser; and where nbgrader puts the feedback it releases for a
student's latest submission (a file named after that submission's secret, which only the student's
own cache holds).
"""
from __future__ import annotations

import os
import pwd
from pathlib import Path

import nbformat

from deploy.hub import HubSettings, run_as


def _nbgrader(settings: HubSettings) -> str:
    return f"{settings.env}/bin/nbgrader"


def home(student: str) -> Path:
    """The student's home folder (from the password database)."""
    return Path(pwd.getpwnam(student).pw_dir)


def fetch_assignment(settings: HubSettings, student: str) -> Path:
    """``nbgrader fetch_assignment`` into the student's home; returns the assignment's folder there."""
    folder = home(student) / settings.assignment
    if not folder.is_dir():
        run_as(student, settings, [_nbgrader(settings), "fetch_assignment", settings.assignment],
               home(student), f"fetching {settings.assignment} as {student}")
    return folder


def submit(settings: HubSettings, student: str, notebooks: dict[str, nbformat.NotebookNode | str]) -> None:
    """Put ``notebooks`` (name -> notebook, or raw text for a broken file) into the student's
    assignment folder as files of the student, then ``nbgrader submit`` as the student."""
    folder = fetch_assignment(settings, student)
    entry = pwd.getpwnam(student)
    for name, notebook in notebooks.items():
        path = folder / f"{name}.ipynb"
        path.write_text(notebook if isinstance(notebook, str) else nbformat.writes(notebook))
        path.chmod(0o644)
        # written by this (root) process: give the file to the student as if they had saved it
        os.chown(path, entry.pw_uid, entry.pw_gid)
    run_as(student, settings, [_nbgrader(settings), "submit", settings.assignment], home(student),
           f"submitting {settings.assignment} as {student}")


def latest_submission_cache(settings: HubSettings, student: str) -> Path:
    """The student's own copy of their latest submission (nbgrader's cache in their home)."""
    cache = home(student) / ".local" / "share" / "jupyter" / "nbgrader_cache" / settings.course_id
    copies = sorted(cache.glob(f"{student}+{settings.assignment}+*"),
                    key=lambda p: (p / "timestamp.txt").read_text() if (p / "timestamp.txt").is_file() else "")
    if not copies:
        raise FileNotFoundError(f"{student} has no submission of {settings.assignment} in {cache}")
    return copies[-1]


def released_feedback_paths(settings: HubSettings, student: str) -> list[Path]:
    """Where nbgrader's release_feedback puts the feedback of the student's latest submission (one
    page per notebook; the files exist once released)."""
    from nbgrader.utils import notebook_hash

    submission = latest_submission_cache(settings, student)
    secret = (submission / "submission_secret.txt").read_text()
    feedback = settings.exchange / settings.course_id / "feedback"
    return [feedback / f"{notebook_hash(secret=secret, notebook_id=nb.stem)}.html"
            for nb in sorted(submission.glob("*.ipynb"))]


def fetch_feedback(settings: HubSettings, student: str) -> list[Path]:
    """``nbgrader fetch_feedback`` as the student; returns the feedback pages of the latest
    submission now in the student's assignment folder (none when nothing was released for it)."""
    run_as(student, settings, [_nbgrader(settings), "fetch_feedback", settings.assignment],
           home(student), f"fetching feedback as {student}")
    stamp = (latest_submission_cache(settings, student) / "timestamp.txt").read_text().strip()
    return sorted((home(student) / settings.assignment / "feedback" / stamp).glob("*.html"))
