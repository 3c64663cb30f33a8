"""`make hub` / `make hub-clean`: a real JupyterHub with real Unix users on 127.0.0.1, and nothing left.

One test walks the whole life of a hub, because each step needs the previous one: start it (real
`jupyterhub`, the configurable-http-proxy npm package, PAM logins), log a student in over HTTP,
watch the student's server start as that student's Unix user, check what the student can and
cannot reach, stop the server, clean, and check that no user, home, process, port or file is left.

It needs root (useradd), node/npm and the student environment (built once into build/student-env,
about 2 minutes); without them it skips locally and fails in CI.
"""
from __future__ import annotations

import json
import pwd
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from hub_course import STUDENT_ENV, check_prerequisites, new_hub_course

SERVER_START_TIMEOUT_S = 180
ASSIGNMENT = "mnist_mlp"


def _uid_processes(uids: set[int]) -> list[str]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
            cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
        except OSError:
            continue
        uid = int(re.search(r"^Uid:\s+(\d+)", text, re.M).group(1))
        if uid in uids:
            found.append(f"{status.parent.name} (uid {uid}): {cmdline}")
    return found


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _login(session, url: str, user: str, password: str):
    page = session.get(f"{url}/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, f"no _xsrf field on the login page ({page.status_code})"
    return session.post(f"{url}/hub/login", data={"username": user, "password": password,
                                                   "_xsrf": xsrf.group(1)})


def _wait_for_server(session, url: str, user: str) -> dict:
    """Open the user's JupyterLab the way a browser does (the hub shows its spawn-pending page until
    the server is up; then OAuth gives the session the server's cookie), then read the server's
    status through its API."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    lab = None
    while time.monotonic() < deadline:
        lab = session.get(f"{url}/user/{user}/lab")
        if lab.status_code == 200 and lab.url.startswith(f"{url}/user/{user}/lab"):
            status = session.get(f"{url}/user/{user}/api/status")
            assert status.status_code == 200, f"{user}'s server status: {status.status_code} {status.text[:300]}"
            return status.json()
        time.sleep(1)
    raise AssertionError(f"{user}'s JupyterLab did not open within {SERVER_START_TIMEOUT_S} s: "
                         f"{lab.status_code if lab is not None else None} {lab.url if lab is not None else ''}")


def _disabled_lab_plugins(session, url: str, user: str) -> list[str]:
    """The plugins JupyterLab's page config (in the /lab page) says are switched off."""
    page = session.get(f"{url}/user/{user}/lab").text
    config = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    assert config, f"no page config in {user}'s /lab page"
    return json.loads(config.group(1)).get("disabledExtensions", [])


@pytest.fixture(scope="module")
def prerequisites():
    check_prerequisites()


def test_hub_runs_students_as_their_own_users_and_cleans_up(prerequisites):
    import requests

    hub = new_hub_course()
    course, hub_dir, prefix, make_vars = hub.course, hub.hub_dir, hub.prefix, hub.make_vars
    try:
        out = hub.start()
        print(out)
        settings = json.loads((hub_dir / "settings.json").read_text())
        url, instructor, (student, other) = f"http://127.0.0.1:{settings['port']}", \
            settings["instructor"], settings["students"]
        passwords = dict(line.split() for line in (hub_dir / "passwords.txt").read_text().splitlines())
        assert set(passwords) == {instructor, student, other}
        assert (hub_dir / "passwords.txt").stat().st_mode & 0o077 == 0, "the passwords file is readable by others"
        for user in (instructor, student, other):
            entry = pwd.getpwnam(user)
            assert Path(entry.pw_dir).stat().st_mode & 0o077 == 0, f"{user}'s home is open to others"
        assert requests.get(f"{url}/hub/health", timeout=10).status_code == 200

        # A wrong password is refused; the right one logs the student in and starts their server.
        wrong = requests.Session()
        _login(wrong, url, student, "not-the-password")
        assert wrong.get(f"{url}/hub/api/user").status_code in (401, 403), "a wrong password logged in"
        session = requests.Session()
        _login(session, url, student, passwords[student])
        status = _wait_for_server(session, url, student)
        assert "started" in status, status
        uid = pwd.getpwnam(student).pw_uid
        servers = [p for p in _uid_processes({uid}) if "jupyterhub-singleuser" in p]
        assert servers, f"no jupyterhub-singleuser runs as {student} (uid {uid})"
        assert str(STUDENT_ENV) in servers[0], f"the student's server is not the student environment: {servers}"

        # What the student's server offers: the assignment to fetch, no Formgrader, nobody else's server.
        listing = session.get(f"{url}/user/{student}/assignments", params={"course_id": settings["course_id"]})
        assert listing.status_code == 200 and ASSIGNMENT in listing.text, \
            f"the student's Assignment List does not offer {ASSIGNMENT}: {listing.status_code} {listing.text[:500]}"
        assert session.get(f"{url}/user/{student}/formgrader").status_code == 404
        foreign = session.get(f"{url}/user/{instructor}/api/contents")
        assert foreign.status_code in (403, 404) or "application/json" not in foreign.headers.get("content-type", ""), \
            f"the student reached the instructor's server: {foreign.status_code} {foreign.url}"

        # JupyterLab's page config: Formgrader is off in the student's Nbgrader menu.
        assert "@jupyter/nbgrader:formgrader" in _disabled_lab_plugins(session, url, student)

        # The instructor's server has the Formgrader, managing the instructor's course.
        teacher = requests.Session()
        _login(teacher, url, instructor, passwords[instructor])
        _wait_for_server(teacher, url, instructor)
        assert "@jupyter/nbgrader:formgrader" not in _disabled_lab_plugins(teacher, url, instructor)
        assignments = teacher.get(f"{url}/user/{instructor}/formgrader/api/assignments")
        assert assignments.status_code == 200, f"the instructor's Formgrader: {assignments.status_code}"
        assert ASSIGNMENT in [a["name"] for a in assignments.json()], assignments.text[:500]
        # JupyterLab shows Formgrader in a frame: the page must allow a same-origin frame.
        policy = teacher.get(f"{url}/user/{instructor}/formgrader").headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'self'" in policy, f"Formgrader cannot be shown in JupyterLab: {policy!r}"
        # JupyterLab saves its workspace into ~/.jupyter/lab (all of ~/.jupyter belongs to the user).
        saved = teacher.put(f"{url}/user/{instructor}/lab/api/workspaces/default",
                            json={"data": {}, "metadata": {"id": "default"}},
                            headers={"X-XSRFToken": teacher.cookies.get("_xsrf", path=f"/user/{instructor}/")})
        assert saved.status_code in (200, 204), f"saving the workspace: {saved.status_code} {saved.text[:300]}"

        # As a Unix user the student reads the released notebook in the exchange, not the course.
        released = Path(settings["hub_dir"]) / "exchange" / settings["course_id"] / "outbound" / ASSIGNMENT
        instructor_source = Path(pwd.getpwnam(instructor).pw_dir) / "mnist-course" / "source" / ASSIGNMENT
        for path, readable in [(released / f"{ASSIGNMENT}.ipynb", True),
                               (instructor_source / f"{ASSIGNMENT}.ipynb", False),
                               (course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", False)]:
            proc = subprocess.run(["cat", str(path)], user=uid, group=pwd.getpwnam(student).pw_gid,
                                  extra_groups=[], capture_output=True)
            assert (proc.returncode == 0) == readable, \
                f"{student} {'cannot' if readable else 'can'} read {path}: {proc.stderr.decode()[:200]}"

        # The student stops their own server through the hub's API (cookie auth needs the XSRF token).
        stopped = session.delete(f"{url}/hub/api/users/{student}/server",
                                 headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")})
        assert stopped.status_code in (202, 204), f"stopping the server: {stopped.status_code} {stopped.text[:300]}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _uid_processes({uid}):
            time.sleep(0.5)
        assert not _uid_processes({uid}), f"the student's server is still running: {_uid_processes({uid})}"
    finally:
        uids = hub.uids()
        port = hub.settings["port"] if (hub_dir / "settings.json").exists() else None
        try:
            print(hub.clean())
            left = [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(prefix)]
            processes = _uid_processes(uids)
            hub_dir_left = hub_dir.exists()
        finally:
            hub.discard()
    assert not left, f"make hub-clean left users: {left}"
    assert not processes, f"make hub-clean left processes: {processes}"
    assert not hub_dir_left, f"make hub-clean left {hub_dir}"
    assert port is not None and not _listening(port), f"something still listens on the hub's port {port}"
