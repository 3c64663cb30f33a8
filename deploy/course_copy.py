"""A copy of the course folder: the parts of the repository a course needs, and nothing generated.

A course copy runs everything the course's Makefile offers (``make lab``, ``make student``,
``make hub``, grading, feedback): the instructor's copy on a hub is one, and so are the copies the
tests and benchmarks work in. nbgrader makes its own folders there (release/, submitted/, the
gradebook). Files keep their modification times, so ``make`` sees a linked ``.venv`` as up to date.
"""
from __future__ import annotations

import shutil
from pathlib import Path

#: what a course copy holds, relative to the repository (or course) it is copied from
COURSE_FILES = ("Makefile", "requirements", "pyproject.toml", "README.md", "LICENSE", "nbgrader_config.py",
                "source", "notebooks", "deploy", "helpers", "grader", "hub")
#: left out wherever they are below those: caches, environments and build output of the source folder
LEFT_OUT = (".ipynb_checkpoints", "__pycache__", ".venv", "build", "*.egg-info", "node_modules")


class CourseCopyError(Exception):
    """The course cannot be copied; the message says what is wrong and what to do."""


def copy_course(src_repo: Path, dest: Path) -> list[Path]:
    """Copy ``COURSE_FILES`` of ``src_repo`` into ``dest`` (created if missing).

    Args:
        src_repo: the repository, or a course folder, to copy from.
        dest: the new course folder; the parts it copies must not be there yet.

    Returns:
        The paths written below ``dest``, in ``COURSE_FILES`` order.

    Raises:
        CourseCopyError: ``src_repo`` lacks part of the course, or ``dest`` already holds some;
            nothing is copied then.
    """
    src_repo, dest = Path(src_repo), Path(dest)
    missing = [name for name in COURSE_FILES if not (src_repo / name).exists()]
    if missing:
        raise CourseCopyError(f"{src_repo} is not a whole course: {', '.join(missing)} missing; copy from "
                              f"the course's repository (its root holds {', '.join(COURSE_FILES)})")
    present = [name for name in COURSE_FILES if (dest / name).exists()]
    if present:
        raise CourseCopyError(f"{dest} already holds {', '.join(present)}: copy into a new or empty folder")
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in COURSE_FILES:
        if (src_repo / name).is_dir():
            shutil.copytree(src_repo / name, dest / name, ignore=shutil.ignore_patterns(*LEFT_OUT))
        else:
            shutil.copy2(src_repo / name, dest / name)
        copied.append(dest / name)
    return copied
