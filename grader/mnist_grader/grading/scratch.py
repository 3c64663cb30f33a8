"""Runs in the grading command (the parent): the scratch course in which one submission is graded.

A scratch course is a copy of nbgrader's config pointed at the scratch folder, a scratch gradebook
holding only the assignment's definitions (``template_gradebook``: the real gradebook with every
student removed and no hidden test), the non-notebook files of ``source/<assignment>`` (nbgrader
copies those over the submission; the source NOTEBOOKS are not copied: autograde restores test
cells from the gradebook), the student's submission (copied as data, ``mnist_grader.grading.intake``)
and a kernelspec that starts the student's kernel through ``mnist_grader.grading.kernel_launcher``.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from mnist_grader.course import Course, CourseError
from mnist_grader.grading import kernel_launcher
from mnist_grader.grading.intake import IntakeLimits, IntakeReport, copy_submission
from mnist_grader.grading.output_cap import AUTOGRADE_PREPROCESSORS
from mnist_grader.grading.restore import RestoreDeletedCells
from mnist_grader.grading.sandbox import KernelSettings, python_install_paths
from mnist_grader.trusted.hidden import hidden_test_delimiters, strip_hidden_tests

KERNEL_NAME = "mnist-grader-sandbox"
#: course packages the student's notebooks import (shown read-only to the kernel, with their data/)
KERNEL_PACKAGES = ["helpers"]
#: nbgrader's sanitizing steps, with deleted test cells put back where they were
SANITIZE_PREPROCESSORS = [
    "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    f"{RestoreDeletedCells.__module__}.{RestoreDeletedCells.__qualname__}",
    "nbgrader.preprocessors.CheckCellMetadata"]


def template_gradebook(course: Course, assignment: str, dest: Path) -> Path:
    """A gradebook with the assignment's definitions and no students (copied from the real one),
    its test cells without their hidden tests (``mnist_grader.trusted.hidden``).

    Raises:
        CourseError: the real gradebook or the assignment in it is missing.
    """
    real = course.gradebook_path
    if not real.is_file():
        raise CourseError(f"no gradebook at {real}: release the assignment first "
                          f"(nbgrader generate_assignment {assignment}, or make release)")
    with sqlite3.connect(real) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)  # consistent copy even if someone writes meanwhile
    with Gradebook(f"sqlite:///{dest}", course.course_id) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise CourseError(f"assignment {assignment!r} is not in {real}: release it first "
                              f"(nbgrader generate_assignment {assignment})") from None
        for student in list(gb.students):
            gb.remove_student(student.id)
    strip_hidden_tests(dest, assignment, hidden_test_delimiters(course.config))
    with sqlite3.connect(dest) as db:
        db.execute("VACUUM")
    return dest


def kernel_readonly_paths(course: Course, extra: list[str]) -> list[str]:
    """What the student's kernel may read besides system folders: Python, the course's helper
    package and data, MNIST."""
    paths = python_install_paths()
    for name in ("helpers", "data"):
        if (course.root / name).exists():
            paths.append(str(course.root / name))
    for package in KERNEL_PACKAGES:  # where they are importable from (e.g. an editable install)
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            folder = Path(list(spec.submodule_search_locations)[0])
            paths += [str(folder), str(folder.parent / "data")]
    paths = [p for p in dict.fromkeys(paths) if os.path.exists(p)]
    if os.environ.get("MNIST_ROOT"):
        paths.append(os.path.realpath(os.environ["MNIST_ROOT"]))
    return paths + [os.path.realpath(p) for p in extra]


def grader_readonly_paths(course: Course, kernel_paths: list[str]) -> list[str]:
    """What the nbgrader process must see of the (otherwise hidden) course folder: the tools."""
    grader_package = str(Path(__file__).resolve().parent.parent)  # mnist_grader, trusted/ included
    return sorted(set(kernel_paths + [grader_package]))


#: the student's kernel talks over unix sockets, ``<scratch>/ipc/k-<n>`` (``c.KernelManager.ip``
#: below), and a unix socket path holds at most this many bytes
MAX_SOCKET_PATH_BYTES = 107


def socket_path_problem(run_dir: Path, submissions: int) -> str:
    """Why the kernels' sockets cannot live below ``run_dir`` (its path is too long), or "".

    Args:
        run_dir: the grading run's scratch folder (its student folders are ``000``, ``001``, ...).
        submissions: how many submissions the run grades.
    """
    longest = run_dir / f"{max(submissions - 1, 0):03d}" / "ipc" / "k-99"
    size = len(os.fsencode(str(longest)))
    if size <= MAX_SOCKET_PATH_BYTES:
        return ""
    return (f"the grading scratch folder {run_dir} has too long a path: the student's kernel talks "
            f"over unix sockets there ({longest}: {size} bytes) and a socket path holds at most "
            f"{MAX_SOCKET_PATH_BYTES} bytes. Nothing was graded. Set TMPDIR (where grading runs make "
            f"their scratch folders) to a folder with a shorter path, such as /tmp")


def build_scratch_course(course: Course, assignment: str, student: str, scratch: Path,
                         template: Path, intake: IntakeLimits) -> IntakeReport:
    """Make ``scratch/course`` (submission, source files, scratch gradebook, config) and
    ``scratch/ipc`` for one student.

    Args:
        course: the real course (read only).
        template: the scratch gradebook to copy (``template_gradebook``).
        intake: caps on the submission's files.

    Returns:
        What intake copied and what it left out.
    """
    course_dir = scratch / "course"
    dirs = course.directories
    submitted = course_dir / dirs["submitted"] / student / assignment
    submitted.parent.mkdir(parents=True)
    report = copy_submission(course.root / dirs["submitted"], [student, assignment],
                             submitted, intake)
    source = course.folder("source", assignment)
    shutil.copytree(source, course_dir / dirs["source"] / assignment,
                    ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    shutil.copy(template, course_dir / "gradebook.db")
    overrides = f"""
# ---- mnist_grader.grading.scratch: this is a scratch course for one student --------------------------------
c.CourseDirectory.root = {str(course_dir)!r}
c.CourseDirectory.db_url = {"sqlite:///" + str(course_dir / "gradebook.db")!r}
c.CourseDirectory.course_id = {course.course_id!r}
c.CourseDirectory.student_id = {student!r}
c.Execute.kernel_name = {KERNEL_NAME!r}
c.KernelManager.transport = "ipc"
c.KernelManager.ip = {str(scratch / "ipc" / "k")!r}
c.OverwriteCells.add_missing_cells = True
# the kernel lives in a throwaway sandbox (its own pid namespace and tmpfs): once the last cell has
# run, kill it rather than wait for a graceful exit (this lab's kernel takes 2.5 s to be SIGTERMed)
c.Execute.shutdown_kernel = "immediate"
c.Autograde.sanitize_preprocessors = {SANITIZE_PREPROCESSORS!r}
c.Autograde.autograde_preprocessors = {AUTOGRADE_PREPROCESSORS!r}
"""
    (course_dir / "nbgrader_config.py").write_text(course.config_text + overrides)
    os.chmod(course_dir, 0o700)  # the kernel's uid must not read the scratch gradebook
    (scratch / "ipc").mkdir()
    return report


def write_kernelspec(settings: KernelSettings, settings_path: Path, jupyter_data_dir: Path) -> None:
    """Save the kernel's settings and a kernelspec (``KERNEL_NAME``) that starts the student's
    kernel through ``mnist_grader.grading.kernel_launcher`` with them."""
    settings.save(settings_path)
    spec_dir = jupyter_data_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", kernel_launcher.__name__,
                     str(settings_path), "{connection_file}"],
            "display_name": "Python 3 (grading sandbox)", "language": "python",
            "interrupt_mode": "message"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
