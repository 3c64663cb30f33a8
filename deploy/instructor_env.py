"""The instructor's Python environment on a hub: the students' environment plus the grader, for Formgrader.

Formgrader's Autograde (and ``nbgrader autograde`` in the instructor's terminal) runs the sandboxed
grader (``mnist_grader.nbgrader_autograde``), so the instructor's server needs ``mnist_grader``, which a
student's environment never has. This environment is built like a student's (``deploy.student_env``:
an interpreter every user can run, the same pins and helpers) and adds the instructor's pins and the
grader. The grader is installed editable from the instructor's copy of the course, in the
instructor's home (mode 700): the environment itself stays readable by everyone (its interpreter
runs the sandboxed kernels) yet holds no grader code (the mistake library quotes answers), and
neither a student nor a sandboxed kernel, which sees the environment but not the course, can read it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from deploy.student_env import REPO, STAMP as STUDENT_STAMP, StudentEnvError, _run, build_student_env

INSTRUCTOR_REQUIREMENTS = REPO / "requirements" / "instructor.txt"
# editable installs of grader/ (its pyproject) are built by a setuptools this recent
SETUPTOOLS = "setuptools>=77"
# the instructor's pins installed there, by digest: unchanged pins are not resolved again (pip takes
# 15-20 s to find them all satisfied), so a hub started again, or the next one the tests start, is
# quicker
STAMP = ".instructor-pins-installed"


def build_instructor_env(env_dir: Path, grader_dir: Path) -> Path:
    """Create (or bring up to date) the instructor environment at ``env_dir``.

    Args:
        env_dir: folder of the virtual environment.
        grader_dir: the grader distribution (``grader/``) of the instructor's course copy.

    Returns:
        The environment's ``bin`` folder.

    Raises:
        StudentEnvError: an install step failed (its output says which).
    """
    if not (grader_dir / "pyproject.toml").is_file():
        raise StudentEnvError(f"no grader distribution in {grader_dir} (grader/pyproject.toml)")
    from deploy.hub import users_env_pins

    env_bin = build_student_env(env_dir, extra_pins=users_env_pins())
    pip = [str(env_bin / "python"), "-m", "pip", "install", "-q"]
    stamp = env_dir / STAMP
    # (with the students' pins' digest: when those were installed again, so are these)
    digest = hashlib.sha256(INSTRUCTOR_REQUIREMENTS.read_bytes() + SETUPTOOLS.encode()
                            + (env_dir / STUDENT_STAMP).read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        _run(pip + ["-r", str(INSTRUCTOR_REQUIREMENTS), SETUPTOOLS], "installing the instructor's pins")
        stamp.write_text(digest + "\n")
    _run(pip + ["--no-deps", "--no-build-isolation", "-e", str(grader_dir)],
         "installing the grader (mnist_grader)")
    return env_bin
