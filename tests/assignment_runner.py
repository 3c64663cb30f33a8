"""Run course notebooks and nbgrader commands the way the course does, in a sandboxed Jupyter home.

Shared by tests/test_assignment*.py and benchmarks/bench_notebooks.py, so the benchmark measures
exactly what the tests check.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import nbformat
from nbclient import NotebookClient

from mnist_grader.jupyter_env import private_dirs

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "mnist_mlp"
SOURCE_NB = REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE_NB = REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
LECTURE_NB = REPO / "notebooks" / "lecture_mlp_mnist.ipynb"
BIN = Path(sys.executable).parent  # nbgrader and alembic (which nbgrader runs from PATH) live here


def isolated_env(home: Path, grading: str | None = None) -> dict[str, str]:
    """os.environ with Jupyter, IPython, matplotlib and XDG writing under `home`, plots headless.

    Args:
        home: a scratch folder.
        grading: value for NBGRADER_EXECUTION ("autograde"/"validate": the notebook trains less),
            None to run as a student does.
    """
    env = dict(os.environ, **private_dirs(home))
    env["MPLBACKEND"] = "Agg"
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("NBGRADER_EXECUTION", None)
    if grading:
        env["NBGRADER_EXECUTION"] = grading
    return env


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """Temporarily replace os.environ (the kernel nbclient starts inherits it)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_notebook(path: Path, grading: str | None = "validate", allow_errors: bool = False,
                 timeout: int = 300) -> tuple[nbformat.NotebookNode, float]:
    """Restart & Run All: execute a copy of the notebook in a fresh kernel, in the notebook's folder.

    Returns:
        the executed notebook and the wall-clock seconds (kernel start included).
    """
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="nbrun-") as home, environment(isolated_env(Path(home), grading)):
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                                resources={"metadata": {"path": str(path.parent)}})
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    return nb, seconds


def errors(nb: nbformat.NotebookNode) -> dict[str, dict]:
    """cell id -> its error output, for every code cell that raised."""
    return {
        cell.id: out for cell in nb.cells if cell.cell_type == "code"
        for out in cell.get("outputs", []) if out.output_type == "error"
    }


def make_course(root: Path) -> Path:
    """A copy of this course (config, source/) in `root`, with its assignment generated: release/ and gradebook."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    # these tests and benchmarks are about the notebook under nbgrader itself, not about the grader
    from mnist_grader.nbgrader_autograde import plain_nbgrader_config
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(plain_nbgrader_config())
    shutil.copytree(REPO / "source", root / "source")
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    return root


def submit(course: Path, student: str, notebook: Path) -> None:
    """Place `notebook` as `student`'s submission of the assignment."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy2(notebook, folder / f"{ASSIGNMENT}.ipynb")


def nbgrader(course: Path, *args: str, timeout: int = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run `nbgrader ARGS` in the course folder (isolated Jupyter home); raise with its log if it fails."""
    with tempfile.TemporaryDirectory(prefix="nbgrader-home-") as home:
        start = time.perf_counter()
        done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=isolated_env(Path(home)),
                              capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done, seconds


def scores(course: Path, student: str) -> dict[str, dict]:
    """grade id -> {"score", "max_score", "needs_manual_grade"} of a student's autograded notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        return {g.name: {"score": g.score, "max_score": g.max_score, "needs_manual_grade": g.needs_manual_grade}
                for g in notebook.grades}
