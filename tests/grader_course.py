"""The grader's test kit: the real CLI run on a released copy of the tiny fixture course.

The tiny fixture course (tests/fixtures/tiny_course: two functions, visible and hidden tests) grades
in seconds. Without bubblewrap the grader still works but cannot wall off the file system: the tests
that need the wall are skipped with a loud warning locally; CI installs bubblewrap (.ci/run) and
fails instead.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import pytest

from mnist_grader.grading.sandbox import find_bwrap
from mnist_grader.jupyter_env import PRIVATE_DIRS

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"
HAVE_BWRAP = find_bwrap() is not None
NO_BWRAP = "bubblewrap (bwrap) is missing: grading runs WITHOUT its file-system/network wall"

if not HAVE_BWRAP:
    warnings.warn(f"\n\n*** {NO_BWRAP}; install it: apt-get install -y bubblewrap ***\n")


def needs_bwrap():
    if HAVE_BWRAP:
        return
    if os.environ.get("CI"):
        pytest.fail(NO_BWRAP + " (CI must have it: see .ci/run)")
    pytest.skip(NO_BWRAP)


@pytest.fixture(scope="module", autouse=True)
def private_jupyter_dirs(tmp_path_factory):
    """Jupyter, IPython, matplotlib and XDG write into temp folders, never the home folder (in every
    test module that imports this fixture)."""
    base = tmp_path_factory.mktemp("jupyter-home")
    with pytest.MonkeyPatch.context() as mp:
        for var, folder in PRIVATE_DIRS.items():
            mp.setenv(var, str(base / folder))
        mp.setenv("MPLBACKEND", "Agg")
        yield


def grader_cli(course: Path, *args: str, check: bool = True, timeout: int = 600,
               env: dict[str, str] | None = None):
    """Run ``python -m mnist_grader ARGS`` (the real CLI) in a course folder (``env``: extra
    environment variables)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "mnist_grader", *args, "--course-dir", str(course)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"mnist_grader {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def tiny_course(tmp_path: Path) -> Path:
    """A released copy of the fixture course."""
    course = tmp_path / "tiny_course"
    shutil.copytree(FIXTURE, course)
    grader_cli(course, "release", "--assignment", "tiny")
    return course


def student_nbgrader(exchange: Path, home: Path, *args: str) -> str:
    """An nbgrader exchange command (fetch_assignment, submit, ...) of the tiny course as a student
    (this user) in ``home``, with its own Jupyter folders; returns its log."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               HOME=str(home), JUPYTER_DATA_DIR=str(home / ".jupyter-data"),
               JUPYTER_CONFIG_DIR=str(home / ".jupyter"))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--course", "tiny_course",
                           f"--Exchange.root={exchange}"], cwd=home, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)}: {proc.stderr[-2000:]}"
    return proc.stderr


# grader QA on the fixture (reduced cheat set: the slow loops and the memory bomb run in
# ``make check-grader``)
TINY_CHEATS = ["cheat-edit-tests", "cheat-delete-tests", "cheat-hide-tracebacks",
               "cheat-rebind-comparisons", "cheat-always-equal", "cheat-sys-exit", "cheat-os-exit",
               "cheat-fork-bomb", "cheat-skip-tests", "cheat-skip-tests-obfuscated",
               "cheat-displayhook-partial-credit", "cheat-rebind-builtin",
               "cheat-print-hidden-tests"]
SANDBOX_CHEATS = ["cheat-read-secrets", "cheat-write-gradebook"]
TINY_MISTAKES = ["mistake-squares-doubles", "mistake-squares-abs", "mistake-mean-sum",
                 "mistake-mean-numpy-float"]


def checked_tiny_course(tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """The fixture course after ``python -m mnist_grader check`` on the reduced set."""
    course = tiny_course(tmp_path)
    cheats = TINY_CHEATS + (SANDBOX_CHEATS if HAVE_BWRAP else [])
    proc = grader_cli(course, "check", "--assignment", "tiny", "-j", "2", "--wall-seconds", "120",
                      "--repeat-reference", "2", "--no-progress", "--only", *TINY_MISTAKES,
                      *cheats, check=False)
    return course, proc


def free_port() -> int:
    """A TCP port nobody listens on now (tests share the machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def formgrader_server(course: Path, env: dict[str, str], log_path: Path) -> Iterator[tuple[str, str]]:
    """A real ``jupyter server`` with nbgrader's Formgrader, rooted at ``course`` (its log in
    ``log_path``; the server's logger at the instructor servers' level); yields (base url, token)
    once it answers, and stops it afterwards."""
    from mnist_grader.nbgrader_autograde import QUIET_SERVER_LOGGING

    port, token = free_port(), uuid.uuid4().hex
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1",
             f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
             "--ServerApp.jpserver_extensions={'nbgrader.server_extensions.formgrader': True}",
             f"--ServerApp.root_dir={course}",
             f"--ServerApp.logging_config={QUIET_SERVER_LOGGING!r}"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                assert server.poll() is None, log_path.read_text()[-3000:]
                try:
                    with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                        break
                except (urllib.error.URLError, ConnectionError):
                    assert time.monotonic() < deadline, "jupyter server did not answer"
                    time.sleep(0.3)
            yield base, token
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _formgrader(base: str, token: str, path: str, post: bool) -> bytes:
    request = urllib.request.Request(f"{base}/formgrader/{path}", data=b"" if post else None,
                                     method="POST" if post else "GET",
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return response.read()


def formgrader_post(base: str, token: str, path: str) -> dict:
    """What a Formgrader button asks its server: POST ``/formgrader/api/PATH``, the JSON reply."""
    return json.loads(_formgrader(base, token, f"api/{path}", post=True))


def formgrader_page(base: str, token: str, path: str) -> str:
    """A Formgrader page (GET ``/formgrader/PATH``, e.g. Manual Grading's ``submissions/ID/``), its HTML."""
    return _formgrader(base, token, path, post=False).decode()
