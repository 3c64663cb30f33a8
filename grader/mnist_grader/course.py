"""An nbgrader course on disk: its folders, gradebook, notebooks and students, read from its config.

Everything here comes from the course's own ``nbgrader_config.py`` through nbgrader's
``CourseDirectory``, so the tooling follows whatever layout the course configures.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

CONFIG_FILE = "nbgrader_config.py"


class CourseError(Exception):
    """The course is not where it was looked for, or is missing something; the message says what to do."""


@dataclass
class Course:
    """A course folder and what nbgrader's config says about it."""

    root: Path
    course_id: str
    db_url: str
    config_text: str
    directories: dict[str, str]
    config: Config

    def folder(self, kind: str, assignment: str, student: str = ".") -> Path:
        """Folder of ``kind`` (source, release, submitted, autograded, feedback) for an assignment."""
        return self.root / self.directories[kind] / student / assignment

    def source_notebooks(self, assignment: str) -> list[Path]:
        """The instructor's notebooks of an assignment, sorted by name."""
        folder = self.folder("source", assignment)
        notebooks = sorted(p for p in folder.glob("*.ipynb"))
        if not notebooks:
            raise CourseError(f"no notebooks in {folder}: is the assignment id right "
                              f"(assignments here: {', '.join(self.assignments()) or 'none'})?")
        return notebooks

    def assignments(self) -> list[str]:
        source = self.root / self.directories["source"]
        return sorted(p.name for p in source.iterdir() if p.is_dir()) if source.is_dir() else []

    def students(self, assignment: str) -> list[str]:
        """Students with a submission of ``assignment`` in the submitted folder."""
        submitted = self.root / self.directories["submitted"]
        if not submitted.is_dir():
            return []
        return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())

    def student_config(self, assignment: str, student: str) -> Config:
        """A copy of the course's config with nbgrader's ids set to one student's submission, for
        nbgrader steps run in this process (the course's own config is never changed: its sections
        are shared objects)."""
        config = copy.deepcopy(self.config)
        config.CourseDirectory.assignment_id = assignment
        config.CourseDirectory.student_id = student
        return config

    @property
    def gradebook_path(self) -> Path:
        if not self.db_url.startswith("sqlite:///"):
            raise CourseError(f"only SQLite gradebooks are supported, the config says {self.db_url}")
        return Path(self.db_url[len("sqlite:///"):])


def load_course(root: str | os.PathLike = ".") -> Course:
    """Read the course at ``root`` (the folder holding ``nbgrader_config.py``).

    Raises:
        CourseError: no config file there.
    """
    root = Path(root).resolve()
    config_path = root / CONFIG_FILE
    if not config_path.is_file():
        raise CourseError(f"no {CONFIG_FILE} in {root}: run this from the course folder or pass "
                          f"--course-dir")
    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    if "root" not in config.get("CourseDirectory", {}):
        config.CourseDirectory.root = str(root)
    coursedir = CourseDirectory(config=config)
    directories = {kind: getattr(coursedir, f"{kind}_directory")
                   for kind in ("source", "release", "submitted", "autograded", "feedback")}
    return Course(root=Path(coursedir.root).resolve(), course_id=coursedir.course_id,
                  db_url=coursedir.db_url, config_text=config_path.read_text(),
                  directories=directories, config=config)
