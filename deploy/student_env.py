"""A student's Python environment: the course's pinned packages and ``helpers``, nothing of the instructor.

The course's own ``.venv`` installs the repository in editable mode, with the grader (``mnist_grader``:
the example mistakes and cheats) and the paths of ``source/`` reachable from it. A student gets a
separate virtual environment instead: the course distribution's own pins and its ``lab`` extra, the
``helpers`` package as a wheel (no link back to the course folder), never the grader, and nbgrader's instructor extensions (Formgrader,
Create Assignment, Course List) switched off at the environment's level, the way nbgrader's
installation guide does it for students (``jupyter server extension disable --sys-prefix`` and
``jupyter labextension disable --level=sys_prefix``). Switched off is not a security boundary (a
student may switch them on in their own config); what a student's server can reach is: only their
own files (``deploy.workspace``, ``deploy.hub``).

The environment is based on an interpreter that every user of the machine can run, so that the
same environment serves the students of a JupyterHub (``deploy.hub``): the running Python when it
is, else the system's ``/usr/bin/python3`` (a Python installed under /root, such as pyenv's, is not).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What a student's environment installs: the course's own runtime and its `lab` extra (JupyterLab
# with nbgrader's student side). Never the instructor or test extras, never the grader (grader/).
REQUIREMENTS = (REPO / "requirements" / "student.txt", REPO / "requirements" / "lab.txt")
# What a wheel of the course distribution is built from (pyproject.toml reads the requirements).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE", "requirements", "helpers")
STAMP = ".student-env-installed"
# nbgrader's parts that are for instructors only: the server side and the JupyterLab side.
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)


SYSTEM_PYTHON = Path("/usr/bin/python3")


class StudentEnvError(Exception):
    """The student environment could not be built; the message says what failed."""


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise StudentEnvError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                              f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def requirements_digest(extra_pins: tuple[str, ...] = ()) -> str:
    """What the installed packages depend on: the pins (the helpers are reinstalled every time)."""
    return hashlib.sha256(b"".join(path.read_bytes() for path in REQUIREMENTS)
                          + "\n".join(extra_pins).encode()).hexdigest()


def pin(package: str, requirements: Path) -> str:
    """The ``package==X.Y.Z`` line of a requirements file.

    Raises:
        StudentEnvError: the file does not pin the package exactly once.
    """
    pins = [line.strip() for line in requirements.read_text().splitlines()
            if line.strip().lower().startswith(f"{package.lower()}==")]
    if len(pins) != 1:
        raise StudentEnvError(f"{requirements} must pin {package} exactly once ({package}==X.Y.Z)")
    return pins[0]


def _torch_pin() -> str:
    return pin("torch", REQUIREMENTS[0])


def usable_by_everyone(path: Path) -> bool:
    """Whether any user can run ``path``: the file and every folder above it let others through."""
    real = path.resolve()
    if not real.is_file() or not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)


def base_python() -> Path:
    """The interpreter to base the environment on: this one's base when every user can run it,
    else /usr/bin/python3 when that one can make virtual environments, else this one's base."""
    current = Path(getattr(sys, "_base_executable", sys.executable))
    if usable_by_everyone(current):
        return current
    if usable_by_everyone(SYSTEM_PYTHON) and subprocess.run(
            [str(SYSTEM_PYTHON), "-c", "import ensurepip, venv"], capture_output=True).returncode == 0:
        return SYSTEM_PYTHON
    return current


def _venv_home(env_dir: Path) -> str | None:
    """The folder of the interpreter an existing virtual environment was made from."""
    try:
        lines = (env_dir / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    return next((line.split("=", 1)[1].strip() for line in lines if line.startswith("home")), None)


def build_helpers_wheel(out_dir: Path) -> Path:
    """A wheel of the course distribution (the ``helpers`` package), built from a copy of its sources.

    Built from a staging copy, so nothing is written into the course folder and the installed
    package keeps no link back to it.

    Returns:
        The wheel's path.
    """
    with tempfile.TemporaryDirectory(prefix="helpers-wheel-") as tmp:
        staging = Path(tmp)
        for name in WHEEL_SOURCES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, staging / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(source, staging / name)
        _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", str(out_dir), str(staging)], "building the helpers wheel")
    wheels = sorted(out_dir.glob("mnist_mlp_course-*.whl"))
    if not wheels:
        raise StudentEnvError(f"pip wheel wrote no course wheel into {out_dir}")
    return wheels[-1]


def build_student_env(env_dir: Path, extra_pins: tuple[str, ...] = ()) -> Path:
    """Create (or bring up to date) the student environment at ``env_dir``.

    The pinned requirements are installed once (torch first, alone: a bare torch requirement pulls a
    CUDA build) and again only when requirements/student.txt or lab.txt change; the helpers wheel and the extension
    switches are applied every time, so a changed ``helpers/`` reaches students.

    Args:
        extra_pins: pinned packages the environment needs beyond a student's (a hub's users need
            JupyterHub's single-user server).

    Returns:
        The environment's ``bin`` folder.
    """
    env_dir = env_dir.resolve()
    python = env_dir / "bin" / "python"
    base = base_python()
    home = _venv_home(env_dir)
    if home is not None and os.path.realpath(home) != str(base.resolve().parent):
        if not (env_dir / STAMP).is_file():
            raise StudentEnvError(f"{env_dir} is a virtual environment this tool did not make: "
                                  f"choose another folder for the student environment")
        shutil.rmtree(env_dir)  # made from another interpreter: make it again from this one
    if not python.exists():
        _run([str(base), "-m", "venv", str(env_dir)], "creating the virtual environment")
    stamp = env_dir / STAMP
    digest = requirements_digest(extra_pins)
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        pip = [str(python), "-m", "pip", "install", "-q"]
        _run(pip + [_torch_pin()], "installing torch")
        _run(pip + [arg for path in REQUIREMENTS for arg in ("-r", str(path))] + list(extra_pins),
             "installing the pinned requirements")
        stamp.write_text(digest + "\n")
    with tempfile.TemporaryDirectory(prefix="helpers-wheel-") as tmp:
        wheel = build_helpers_wheel(Path(tmp))
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
             "installing the helpers wheel")
    jupyter = str(env_dir / "bin" / "jupyter")
    for extension in INSTRUCTOR_SERVER_EXTENSIONS:
        _run([jupyter, "server", "extension", "disable", "--sys-prefix", extension],
             f"switching off {extension}")
    _run([jupyter, "labextension", "disable", "--level=sys_prefix", *INSTRUCTOR_LAB_PLUGINS],
         "switching off nbgrader's instructor plugins in JupyterLab")
    return env_dir / "bin"
