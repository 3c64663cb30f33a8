"""Formgrader's Collect and `nbgrader collect` with the course's settings (grader/mnist_grader/exchange_collect.py).

Real nbgrader commands on a released copy of the tiny fixture course, with a real exchange under
tmp_path into which a student (this user) fetched and submitted with nbgrader's own commands. Then
the inbound folder gets what a student can put there: a newer folder of their own holding a link
to the instructor's source notebook, folders named after somebody else, a link or a file in place
of a folder, a name nbgrader cannot read. With the course's `c.ExchangeFactory.collect` the link is
left out and reported, the refused folders are logged and nothing of them is copied, an honest
submission arrives unchanged; with plain nbgrader's collect (the other side) the source notebook's
hidden tests land in submitted/ and the folder in another's name is taken. Folders owned by another
Unix user need root (two real users, removed afterwards); Formgrader's Collect endpoint runs in a
real Jupyter server.
"""
from __future__ import annotations

import datetime
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

from tests.grader_course import (formgrader_post, formgrader_server,  # noqa: F401 (autouse fixture)
                                 private_jupyter_dirs, student_nbgrader, tiny_course)
from tests.hub_course import skip_or_fail
from tests.test_feedback import hidden_test_lines, leaks

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "tiny"


@pytest.fixture(scope="module")
def jupyter_env(private_jupyter_dirs) -> dict[str, str]:
    """Environment for nbgrader and Jupyter: private Jupyter folders, this venv's tools first."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])


def course_collect_setting() -> str:
    """The collect line of this repository's nbgrader_config.py, as config text."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert config.ExchangeFactory.collect, "nbgrader_config.py must name the course's collect step"
    return f"\nc.ExchangeFactory.collect = {config.ExchangeFactory.collect!r}\n"


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> tuple[Path, Path]:
    """(course, exchange): the tiny course released into an exchange, fetched and submitted once by
    this user with nbgrader's own commands."""
    base = tmp_path_factory.mktemp("collect-kit")
    course = tiny_course(base)
    exchange, home = base / "exchange", base / "home"
    exchange.mkdir()
    exchange.chmod(0o777)
    home.mkdir()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "release_assignment", ASSIGNMENT,
                           f"--Exchange.root={exchange}"], cwd=course, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    student_nbgrader(exchange, home, "fetch_assignment", ASSIGNMENT)
    student_nbgrader(exchange, home, "submit", ASSIGNMENT)
    return course, exchange


def course_copy(kit: tuple[Path, Path], dest: Path, course_collect: bool) -> tuple[Path, Path]:
    """A copy of the kit's course and exchange in ``dest``, collecting with the course's collect
    step or (``course_collect`` False) with plain nbgrader's; returns (course, inbound folder)."""
    course, exchange = kit
    shutil.copytree(course, dest / "course", symlinks=True)
    shutil.copytree(exchange, dest / "exchange", symlinks=True)
    with open(dest / "course" / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.Exchange.root = {str(dest / 'exchange')!r}\n")
        if course_collect:
            config.write(course_collect_setting())
    return dest / "course", dest / "exchange" / "tiny_course" / "inbound"


def collect(course: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`nbgrader collect tiny` in the course folder, as the instructor (this user)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", "collect", ASSIGNMENT], cwd=course,
                          env=env, capture_output=True, text=True, timeout=300)


def submitted_by_this_user(inbound: Path) -> Path:
    """The folder `nbgrader submit` wrote into the inbound in the kit."""
    [folder] = [p for p in inbound.iterdir() if not p.name.startswith(".")]
    return folder


def later_folder(inbound: Path, model: Path, student: str, seconds: float) -> Path:
    """A copy of the inbound folder ``model`` for ``student``, ``seconds`` after it (a name and a
    timestamp.txt as `nbgrader submit` writes them)."""
    from mnist_grader.grading.inbound import parse_inbound_name

    when = parse_inbound_name(model.name, ASSIGNMENT).timestamp + datetime.timedelta(seconds=seconds)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
    folder = inbound / f"{student}+{ASSIGNMENT}+{stamp}+{uuid.uuid4().hex[:8]}"
    shutil.copytree(model, folder)
    (folder / "timestamp.txt").write_text(stamp)
    return folder


def plant_link_to_source(course: Path, inbound: Path, honest: Path) -> tuple[str, Path]:
    """A newer submission of the student of the inbound folder ``honest``: its files and
    ``solution.ipynb``, a link to the instructor's source notebook. Returns (the student's id, the
    folder)."""
    student = honest.name.split("+")[0]
    planted = later_folder(inbound, honest, student, 60)
    (planted / "solution.ipynb").symlink_to(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return student, planted


def regular_files(folder: Path) -> dict[str, bytes]:
    """Relative path -> content of the regular files under ``folder`` (links not followed)."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if path.is_file() and not path.is_symlink():
                found[str(path.relative_to(folder))] = path.read_bytes()
    return found


def source_leaks(course: Path, folder: Path) -> list[str]:
    """The source notebook's hidden test lines found in any file under ``folder``."""
    secrets = hidden_test_lines(course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    assert secrets
    return [line for text in regular_files(folder).values()
            for line in leaks(text.decode(errors="replace"), secrets)]


def test_a_link_to_the_source_notebook_is_left_out_and_honest_work_arrives_unchanged(
        tmp_path, kit, jupyter_env):
    course, inbound = course_copy(kit, tmp_path, course_collect=True)
    submitted = submitted_by_this_user(inbound)
    student, planted = plant_link_to_source(course, inbound, submitted)
    # a second student on this single-user exchange (no Unix user of that name): the honest files
    ghost = f"ghost-{uuid.uuid4().hex[:8]}"
    honest = later_folder(inbound, submitted, ghost, 30)
    proc = collect(course, jupyter_env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "left out solution.ipynb: a symbolic link" in log, log
    mine = course / "submitted" / student / ASSIGNMENT
    assert regular_files(mine) == regular_files(planted)  # everything but the link
    assert not (mine / "solution.ipynb").exists()
    assert source_leaks(course, course / "submitted") == []
    assert regular_files(course / "submitted" / ghost / ASSIGNMENT) == regular_files(honest)


def test_plain_nbgrader_collect_copies_the_source_notebook_through_the_link(tmp_path, kit, jupyter_env):
    """The other side: nbgrader's own collect follows the link."""
    course, inbound = course_copy(kit, tmp_path, course_collect=False)
    student, _ = plant_link_to_source(course, inbound, submitted_by_this_user(inbound))
    proc = collect(course, jupyter_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    copied = course / "submitted" / student / ASSIGNMENT / "solution.ipynb"
    assert copied.is_file() and not copied.is_symlink()
    assert source_leaks(course, copied.parent)


def other_user(me: str) -> str:
    """A Unix user of this machine who is not ``me``."""
    return next(name for name in ("nobody", "root", "daemon") if name != me and _is_user(name))


def _is_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def test_folders_that_cannot_be_taken_are_refused_and_the_rest_collected(tmp_path, kit, jupyter_env):
    course, inbound = course_copy(kit, tmp_path, course_collect=True)
    honest = submitted_by_this_user(inbound)
    me = honest.name.split("+")[0]
    someone = other_user(me)
    in_their_name = later_folder(inbound, honest, someone, 10)  # owned by this user
    link_student, file_student = f"ghost-{uuid.uuid4().hex[:8]}", f"ghost-{uuid.uuid4().hex[:8]}"
    later_folder(inbound, honest, link_student, 10).rename(inbound / "moved")
    (inbound / f"{link_student}+{ASSIGNMENT}+2030-01-01 00:00:00.000000 UTC").symlink_to(inbound / "moved")
    (inbound / f"{file_student}+{ASSIGNMENT}+2030-01-01 00:00:00.000000 UTC").write_text("not a folder")
    unreadable = inbound / f"{me}+{ASSIGNMENT}+not a time"
    shutil.copytree(honest, unreadable)
    # this user's newest entry is a link (refused): their older, real folder is collected instead
    newest = inbound / f"{me}+{ASSIGNMENT}+2031-01-01 00:00:00.000000 UTC"
    newest.symlink_to(inbound / "moved")
    proc = collect(course, jupyter_env)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert f"claims to be by {someone} but belongs to {me}: refused" in log, log
    assert f"{newest}: the inbound entry is not a folder" in log, log
    assert f"Collecting {honest.name} for {me}: a newer folder in their name was refused" in log, log
    for student in (link_student, file_student):
        assert f"{student}+{ASSIGNMENT}+2030-01-01 00:00:00.000000 UTC: the inbound entry is not a folder" in log
    assert f"Skipped {unreadable}: not a submission folder name nbgrader can read" in log, log
    assert regular_files(course / "submitted" / me / ASSIGNMENT) == regular_files(honest)
    assert sorted(p.name for p in (course / "submitted").iterdir()) == [me]
    assert in_their_name.is_dir()  # the inbound is left as it was


def test_plain_nbgrader_collect_takes_a_folder_in_another_students_name(tmp_path, kit, jupyter_env):
    """The other side: nbgrader's own collect only warns."""
    course, inbound = course_copy(kit, tmp_path, course_collect=False)
    honest = submitted_by_this_user(inbound)
    someone = other_user(honest.name.split("+")[0])
    later_folder(inbound, honest, someone, 10)
    proc = collect(course, jupyter_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cheating attempt?" in proc.stderr
    assert (course / "submitted" / someone / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()


@pytest.fixture
def two_users():
    """Two real Unix users (a unique prefix; removed afterwards)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        skip_or_fail("folders owned by other students need two real Unix users: root and useradd")
    prefix = f"mc{uuid.uuid4().hex[:6]}"
    created = []
    try:
        for name in (f"{prefix}-a", f"{prefix}-b"):
            subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin",
                            name], check=True, capture_output=True)
            created.append(name)
        yield created
    finally:
        for name in created:
            subprocess.run(["userdel", name], capture_output=True)


def _give(folder: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def test_a_folder_in_another_students_name_is_refused_and_theirs_collected(tmp_path, kit, jupyter_env,
                                                                            two_users):
    a, b = two_users
    for course_collect in (True, False):  # the course's collect, then plain nbgrader's
        course, inbound = course_copy(kit, tmp_path / str(course_collect), course_collect)
        model = submitted_by_this_user(inbound)
        real = later_folder(inbound, model, b, 10)  # b's own
        (real / "which.txt").write_text("b's own")
        forged = later_folder(inbound, model, b, 20)  # newer, in b's name, made by a
        (forged / "which.txt").write_text("made by a")
        own = later_folder(inbound, model, a, 10)
        ghost = later_folder(inbound, model, f"ghost-{uuid.uuid4().hex[:8]}", 10)  # no such user
        for folder, owner in ((real, b), (forged, a), (own, a), (ghost, a)):
            _give(folder, owner)
        shutil.rmtree(model)
        proc = collect(course, jupyter_env)
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, log
        collected = course / "submitted" / b / ASSIGNMENT / "which.txt"
        assert (course / "submitted" / a / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
        if not course_collect:
            assert collected.read_text() == "made by a"  # plain nbgrader: a's folder in b's name
            continue
        assert collected.read_text() == "b's own", log
        assert f"claims to be by {b} but belongs to {a}: refused" in log, log
        assert f"belongs to {a}, not to root who collects: refused" in log, log
        assert not (course / "submitted" / ghost.name.split("+")[0]).exists()


def test_formgraders_collect_button_leaves_the_link_out(tmp_path, kit, jupyter_env):
    course, inbound = course_copy(kit, tmp_path, course_collect=True)
    student, planted = plant_link_to_source(course, inbound, submitted_by_this_user(inbound))
    with formgrader_server(course, jupyter_env, tmp_path / "server.log") as (base, token):
        reply = formgrader_post(base, token, f"assignment/{ASSIGNMENT}/collect")
    assert reply["success"], reply
    assert "left out solution.ipynb: a symbolic link" in reply.get("log", ""), reply
    assert regular_files(course / "submitted" / student / ASSIGNMENT) == regular_files(planted)
    assert source_leaks(course, course / "submitted") == []
