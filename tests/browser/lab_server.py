"""The course's JupyterLab for the browser tests: a course copy, `make lab`, its PID, and stopping it.

Also the few facts the tests share (the assignment, the example students, where Chromium is) and
the rule for missing prerequisites: skip locally, fail in CI.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from mnist_grader.jupyter_env import private_dirs

REPO = Path(__file__).resolve().parents[2]
# The course to copy; another checkout can be pointed at for debugging.
COURSE_SRC = Path(os.environ.get("BROWSER_TEST_COURSE", REPO))
VENV_BIN = Path(sys.executable).parent
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = REPO / "build" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
ASSIGNMENT = "mnist_mlp"
# The student environment (`python -m deploy student-env`) takes about 2 minutes to build; the tests
# share one, kept between runs in the checkout's build/ (rebuilt when its requirements change).
STUDENT_ENV = REPO / "build" / "student-env"
SERVER_START_TIMEOUT_S = 180
# Example students of the instructor tooling (grader/mnist_grader/examples.py): full marks, nothing, one
# typical mistake (softmax without the max subtraction overflows).
REFERENCE_STUDENT, BLANK_STUDENT, MISTAKE_STUDENT = "example-reference", "example-blank", "mistake-softmax-overflow"
EXAMPLE_STUDENTS = (REFERENCE_STUDENT, BLANK_STUDENT, MISTAKE_STUDENT)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> None:
    """Skip locally; fail in CI, where a missing prerequisite is a broken pipeline, not an excuse."""
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def isolated_env(home: Path) -> dict[str, str]:
    """Environment for Jupyter, nbgrader and their kernels that writes nothing outside `home`."""
    env = dict(os.environ, **private_dirs(home))
    for var, sub in [("XDG_DATA_HOME", "data"), ("HOME", "home")]:  # JupyterLab's too
        path = home / sub
        path.mkdir(parents=True, exist_ok=True)
        env[var] = str(path)
    # A fresh user never answered JupyterLab's "notified about news?" toast; it would cover the
    # screenshots (and there is no network to fetch news from).
    settings = Path(env["JUPYTER_CONFIG_DIR"]) / "lab" / "user-settings" / "@jupyterlab" / \
        "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # The kernels must draw inline (ipykernel picks its inline backend only when this is unset).
    env.pop("MPLBACKEND", None)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_instructor(course: Path, env: dict[str, str], *args: str) -> None:
    """Run one `python -m mnist_grader ...` command in the course folder; a failure shows its output."""
    result = subprocess.run(
        [sys.executable, "-m", "mnist_grader", *args], cwd=course, env=env,
        capture_output=True, text=True, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`python -m mnist_grader {' '.join(args)}` failed in {course} (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def nbgrader_settings(course: Path, env: dict[str, str]) -> tuple[str, Path]:
    """(course id, exchange folder) as nbgrader reads them from the course's nbgrader_config.py."""
    code = (
        "from nbgrader.apps import NbGrader; app = NbGrader(); app.load_config_file();"
        "print(app.config.CourseDirectory.course_id); print(app.config.Exchange.root)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=course, env=env, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    return out[0], (course / out[1]).resolve()


@dataclass
class JupyterLab:
    """A running `jupyter lab` server started through `make lab`, owned by the test session."""

    root: Path
    port: int
    token: str
    make: subprocess.Popen
    server_pid: int | None
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n_chars:]


def child_pids(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (read from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name (field 2) may hold spaces; the parent PID follows its closing ")".
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def start_lab(root: Path, env: dict[str, str], log_path: Path, target: str = "lab",
              make_vars: tuple[str, ...] = ()) -> JupyterLab:
    """Start JupyterLab for the course in `root` the way a person does: `make lab` (or `target`,
    e.g. `make student-lab STUDENT_DIR=...` with `make_vars`).

    `make lab` releases the assignment into the course's exchange and then execs `jupyter lab` in
    the course folder (so nbgrader reads ./nbgrader_config.py); LAB_ARGS binds it to 127.0.0.1 on a
    free port with a random token. The server is make's child; its PID is looked up once it
    answers, and `stop_lab` stops it by that PID. Raises with the log when it does not come up.
    """
    port, token = free_port(), uuid.uuid4().hex
    lab_args = [
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}",
        # No network here and no pop-ups in the screenshots.
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    # -o: the course copy shares this checkout's .venv, which must never be rebuilt from here.
    cmd = ["make", "--no-print-directory", "-o", ".venv/.installed", target, *make_vars,
           f"LAB_ARGS={' '.join(lab_args)}"]
    log = open(log_path, "w")
    process = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = JupyterLab(root=root, port=port, token=token, make=process, server_pid=None, log_path=log_path)
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"`make {target}` exited with {process.returncode}:\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(lab.url("api/status"), timeout=2) as response:
                if response.status == 200:
                    servers = child_pids(process.pid)
                    assert len(servers) == 1, f"expected make's one child, the server; found {servers}"
                    lab.server_pid = servers[0]
                    return lab
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stop_lab(lab)
    raise RuntimeError(f"`make {target}` did not serve within {SERVER_START_TIMEOUT_S} s:\n{lab.log_tail()}")


def stop_lab(lab: JupyterLab) -> None:
    """Stop the server by its PID: SIGTERM (it shuts its kernels down), SIGKILL if it hangs.

    make exits by itself once its child has gone.
    """
    pid = lab.server_pid if lab.server_pid is not None else lab.make.pid
    for sig, wait_s in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        if lab.make.poll() is not None:
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        try:
            lab.make.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    if lab.make.poll() is None:  # the server is gone but make hangs on: end make too, by its PID
        lab.make.kill()
        lab.make.wait(timeout=10)


def run_make(root: Path, env: dict[str, str], *args: str, timeout_s: float = 900) -> str:
    """Run `make ARGS` in a course copy (never rebuilding the shared .venv); returns its output.

    Raises:
        RuntimeError: with the output's tail, when make fails.
    """
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=timeout_s,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`make {' '.join(args)}` failed in {root} (exit {result.returncode}):\n"
                           f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout
