"""`nbgrader autograde` and Formgrader's Autograde button grade in the sandbox, as
`python -m mnist_grader autograde` does (grader/mnist_grader/nbgrader_autograde.py).

Real nbgrader on the tiny fixture course with the course's own Autograde settings (read from this
repository's nbgrader_config.py): the same submissions graded by `nbgrader autograde`, by Formgrader's
autograde endpoint in a real Jupyter server, and by `python -m mnist_grader autograde` get the same
scores; the honest one full marks, a cheat that only works inside the student's kernel nothing, a
cheat that reads outside its folder nothing; plain nbgrader, for the other side, gives that cheat
points. The log at nbgrader's default level stays short.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config.loader import PyFileConfigLoader

from grader_course import (HAVE_BWRAP, formgrader_post, formgrader_server, grader_cli,  # noqa: F401
                           needs_bwrap, private_jupyter_dirs, tiny_course)
from test_feedback import hidden_test_lines, leaks

REPO = Path(__file__).resolve().parent.parent
HONEST, MISTAKE, KERNEL_CHEAT, READ_CHEAT = ("example-reference", "mistake-squares-abs",
                                             "cheat-displayhook-partial-credit", "cheat-read-secrets")
STUDENTS = [HONEST, MISTAKE, KERNEL_CHEAT] + ([READ_CHEAT] if HAVE_BWRAP else [])
# graded through Formgrader's HTTP API
FORMGRADER_STUDENTS = [HONEST, KERNEL_CHEAT]
AUTOGRADED_POINTS = 5  # the fixture's autograded points (one more is graded by hand)


@pytest.fixture(scope="module")
def jupyter_env(private_jupyter_dirs) -> dict[str, str]:
    """Environment for nbgrader and Jupyter: private Jupyter folders (``private_jupyter_dirs``), this
    venv's tools first."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def course_autograde_settings(leave_out: tuple[str, ...] = ()) -> str:
    """The Autograde lines of this repository's nbgrader_config.py (but those in ``leave_out``), as
    config text."""
    from mnist_grader.nbgrader_autograde import is_configured

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert is_configured(config), "nbgrader_config.py must send Autograde to the sandboxed grader"
    assert config.Autograde.pre_convert_hook, "nbgrader_config.py must check submissions before copying"
    return "".join(f"\nc.Autograde.{name} = {value if isinstance(value, str) else list(value)!r}"
                   for name, value in config.Autograde.items() if name not in leave_out) + "\n"


def course_with(tmp_path: Path, students: list[str], settings: str = "") -> Path:
    """A released tiny course with ``students``' example submissions and ``settings`` appended to
    its nbgrader_config.py."""
    course = tiny_course(tmp_path)
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(settings)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", *students)
    return course


def gradebook_scores(course: Path, students: list[str]) -> dict[str, dict[str, tuple]]:
    """student -> grade id -> (score, needs manual grade), from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {s: {g.name: (g.score, g.needs_manual_grade)
                    for nb in gb.find_submission("tiny", s).notebooks for g in nb.grades}
                for s in students}


def autograded_score(scores: dict[str, tuple]) -> float:
    return sum(score or 0 for name, (score, _) in scores.items() if name.startswith("test_"))


@pytest.fixture(scope="module")
def by_nbgrader(tmp_path_factory, jupyter_env):
    """(course, completed process) of `nbgrader autograde tiny --force` with the course's settings."""
    course = course_with(tmp_path_factory.mktemp("nbgrader"), STUDENTS, course_autograde_settings())
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--force"],
                          cwd=course, env=jupyter_env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return course, proc


@pytest.fixture(scope="module")
def by_grader_cli(tmp_path_factory, jupyter_env):
    """The course graded by `python -m mnist_grader autograde` (the reference for the others)."""
    course = course_with(tmp_path_factory.mktemp("cli"), STUDENTS)
    grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress")
    return course


def test_nbgrader_autograde_scores_as_the_sandboxed_grader(by_nbgrader, by_grader_cli):
    course, _ = by_nbgrader
    ours = gradebook_scores(course, STUDENTS)
    assert ours == gradebook_scores(by_grader_cli, STUDENTS)
    assert autograded_score(ours[HONEST]) == AUTOGRADED_POINTS
    assert autograded_score(ours[MISTAKE]) < AUTOGRADED_POINTS
    # the kernel-only cheat: held at 0, every autograded cell waiting for a human
    assert autograded_score(ours[KERNEL_CHEAT]) == 0
    assert all(manual for name, (_, manual) in ours[KERNEL_CHEAT].items() if name.startswith("test_"))


def test_plain_nbgrader_would_have_given_the_kernel_cheat_points(tmp_path, jupyter_env, by_nbgrader):
    """The other side: without the course's settings the same cheat scores in nbgrader's kernel."""
    course = course_with(tmp_path, [KERNEL_CHEAT])
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--force"], cwd=course,
                   env=jupyter_env, capture_output=True, check=True, timeout=300)
    plain = autograded_score(gradebook_scores(course, [KERNEL_CHEAT])[KERNEL_CHEAT])
    sandboxed = autograded_score(gradebook_scores(by_nbgrader[0], [KERNEL_CHEAT])[KERNEL_CHEAT])
    assert plain > sandboxed == 0


def test_nbgrader_autograde_runs_student_code_in_the_sandbox(by_nbgrader):
    needs_bwrap()
    course, _ = by_nbgrader
    nb = nbformat.read(str(course / "autograded" / READ_CHEAT / "tiny" / "tiny.ipynb"), as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[0].get("outputs", []))
    assert "files outside my own folder that I could read: 0" in text, text
    assert "CHEAT-SUCCEEDED" not in text
    assert autograded_score(gradebook_scores(course, [READ_CHEAT])[READ_CHEAT]) == 0


def test_no_hidden_test_reaches_the_autograded_notebooks(by_nbgrader):
    course, _ = by_nbgrader
    secrets = hidden_test_lines(course / "source" / "tiny" / "tiny.ipynb")
    assert secrets
    for student in STUDENTS:
        text = (course / "autograded" / student / "tiny" / "tiny.ipynb").read_text()
        assert not leaks(text, secrets), student


def test_autograded_folders_hold_what_the_sandboxed_grader_published(by_nbgrader):
    course, proc = by_nbgrader
    for student in STUDENTS:
        folder = course / "autograded" / student / "tiny"
        assert sorted(p.name for p in folder.iterdir()) == ["timestamp.txt", "tiny.ipynb"], student


def test_nbgrader_autograde_log_is_short(by_nbgrader):
    _, proc = by_nbgrader
    log = proc.stdout + proc.stderr
    assert "DEBUG" not in log and "has changed" not in log
    assert len(log) < 4000 * len(STUDENTS), len(log)
    for student in STUDENTS:  # one line per submission says what the sandboxed grader did
        assert re.search(rf"{student}: [\d.]+/6, (graded|HELD at 0 for review) in ", log), student


# --------------------------------------------------------------------------------------------------
# Formgrader: its autograde endpoint in a real Jupyter server rooted at the course
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def formgrader(tmp_path_factory, jupyter_env):
    """(course, base url, token) of `jupyter server` with nbgrader's Formgrader, in a course whose
    submissions nobody has graded yet; the server's logger at the instructor servers' level."""
    course = course_with(tmp_path_factory.mktemp("formgrader"), FORMGRADER_STUDENTS,
                         course_autograde_settings())
    with formgrader_server(course, jupyter_env, course.parent / "server.log") as (base, token):
        yield course, base, token


def formgrader_autograde(base: str, token: str, student: str) -> dict:
    """What Formgrader's Autograde button asks the server for one submission."""
    return formgrader_post(base, token, f"submission/tiny/{student}/autograde")


def test_formgrader_autograde_is_the_sandboxed_grader(formgrader, by_grader_cli):
    course, base, token = formgrader
    replies = {student: formgrader_autograde(base, token, student) for student in FORMGRADER_STUDENTS}
    for student, reply in replies.items():
        assert reply["success"], reply.get("log", "")[-3000:] + reply.get("error", "")[-3000:]
        log = reply.get("log", "")
        assert "in the sandbox (mnist_grader)" in log, log
        # nbgrader's own handful of DEBUG lines, not the kernel's messages; no checksum warnings
        assert len(log) < 4000 and log.count("[DEBUG]") <= 6 and "has changed" not in log, log
    assert gradebook_scores(course, FORMGRADER_STUDENTS) == \
        gradebook_scores(by_grader_cli, FORMGRADER_STUDENTS)
    assert autograded_score(gradebook_scores(course, [KERNEL_CHEAT])[KERNEL_CHEAT]) == 0


# --------------------------------------------------------------------------------------------------
# the check before nbgrader copies a submission's files (c.Autograde.pre_convert_hook)
# --------------------------------------------------------------------------------------------------
def _autograde_with_links(tmp_path: Path, jupyter_env, settings: str) -> tuple[Path, str]:
    """`nbgrader autograde tiny --force` on HONEST and MISTAKE, MISTAKE's folder holding a link to the
    instructor's source notebook; and a student folder that is a link to HONEST's. (The course's
    Collect never puts links into submitted/; a folder filled by hand or by unzip can hold them.)

    Returns:
        The course and nbgrader's log.
    """
    course = course_with(tmp_path, [HONEST, MISTAKE], settings)
    (course / "submitted" / MISTAKE / "tiny" / "solution.txt").symlink_to(
        course / "source" / "tiny" / "tiny.ipynb")
    (course / "submitted" / "linked-folder").symlink_to(course / "submitted" / HONEST)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--force"],
                          cwd=course, env=jupyter_env, capture_output=True, text=True, timeout=900)
    return course, proc.stdout + proc.stderr


def test_a_submitted_folder_with_a_link_is_refused_before_nbgrader_copies(tmp_path, jupyter_env):
    course, log = _autograde_with_links(tmp_path, jupyter_env, course_autograde_settings())
    # refused with what is wrong and what to do; nbgrader counts both as failed
    assert f"{MISTAKE}'s submission" in log and "solution.txt: a symbolic link" in log, log
    assert "What to do: take" in log and "collect the submission again with the course's Collect" in log
    assert "linked-folder is a symbolic link, not a folder" in log, log
    assert f"There was an error processing assignment 'tiny' for student '{MISTAKE}'" in log
    assert "There was an error processing assignment 'tiny' for student 'linked-folder'" in log
    # nothing was copied through a link (nbgrader logs every copy as "Copying SRC -> DEST")
    assert "solution.txt ->" not in log and "linked-folder/tiny/tiny.ipynb" not in log, log
    assert not (course / "autograded" / MISTAKE / "tiny").exists()
    assert not (course / "autograded" / "linked-folder" / "tiny").exists()
    # the honest submission is graded as usual
    assert autograded_score(gradebook_scores(course, [HONEST])[HONEST]) == AUTOGRADED_POINTS


def test_without_the_check_nbgrader_copies_through_the_link(tmp_path, jupyter_env):
    """The other side: the same settings but the hook, and nbgrader copies the link's target."""
    _, log = _autograde_with_links(tmp_path, jupyter_env,
                                   course_autograde_settings(leave_out=("pre_convert_hook",)))
    assert re.search(rf"Copying \S*{MISTAKE}/tiny/solution.txt -> ", log), log
    assert "is not graded: it holds what is not a plain file" not in log


def test_the_check_stops_everything_when_nbgrader_is_not_its_caller(tmp_path):
    """Called by anything but nbgrader's converter, a refusal cannot be handed to nbgrader: it stops
    the caller (an exception nbgrader's hook runner would not swallow) instead of passing silently."""
    from mnist_grader.nbgrader_autograde import UnsafeSubmissionAbort, refuse_unsafe_submission

    folder = tmp_path / "submitted" / "alice" / "tiny"
    folder.mkdir(parents=True)
    (folder / "tiny.ipynb").write_text("{}")
    notebooks = [str(folder / "tiny.ipynb")]
    assert refuse_unsafe_submission(assignment="tiny", student="*", notebooks=notebooks) is None
    (folder / "solution.txt").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeSubmissionAbort, match="solution.txt: a symbolic link"):
        refuse_unsafe_submission(assignment="tiny", student="*", notebooks=notebooks)
    assert not issubclass(UnsafeSubmissionAbort, Exception)
