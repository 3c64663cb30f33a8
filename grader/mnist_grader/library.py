"""The declarative vocabulary of example submissions: mistakes and cheats, and where libraries live.

A *mistake library* is a small Python file per assignment (``grader/mnist_grader/mistakes/<assignment>.py``,
or ``<course>/<assignment>_mistakes.py``) defining:

* ``TASKS``: the grade ids of the solution cells that are graded by tests (each needs >= 2 mistakes);
* ``MISTAKES``: a list of ``Mistake`` (an edit of one solution cell of the reference answers, and the
  test cells that must lose points because of it);
* ``CHEAT_BASE``: the name of a mistake whose answers run but are wrong (cheats that try to make wrong
  answers pass are applied on top of it: they must not score more than it does);
* ``CHEATS`` (optional): assignment-specific ``Cheat`` entries (the type lives in
  ``mnist_grader.cheats`` and is importable from here), added to the generic ones there;
* ``ALTERNATIVES`` (optional): correct answers in other styles (``Alternative``), which must keep
  full marks with no hold and no flag.

Edits name cells by their nbgrader ``grade_id``, so the library follows the notebook when its text
changes; an edit whose text is no longer there is an error that says which mistake to update.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from mnist_grader.cheats import Cheat, generic_cheats
from mnist_grader.course import CourseError

__all__ = ["Alternative", "Cheat", "Library", "LibraryError", "Mistake", "library_path",
           "load_library"]


@dataclass
class Mistake:
    """A realistic wrong answer in one solution cell.

    Args:
        name: short id, used in the example student's name (``mistake-<name>``).
        cell: grade_id of the solution cell to edit (its reference answer, solution markers removed).
        must_lose: grade_ids of test cells that must lose points.
        replace: (old, new) text replacements applied to the reference answer, in order; each ``old``
            must occur.
        source: the whole new answer instead of ``replace``.
        why: what a student would have done wrong.
    """

    name: str
    cell: str
    must_lose: list[str]
    replace: list[tuple[str, str]] = field(default_factory=list)
    source: str | None = None
    why: str = ""


@dataclass
class Alternative:
    """A correct answer written in another style than the reference: it must keep full marks.

    Args:
        name: short id (``alternative-<name>``).
        answers: {solution grade_id: the whole new answer}.
        why: what is different about it.
    """

    name: str
    answers: dict[str, str]
    why: str = ""


@dataclass
class Library:
    """One assignment's mistakes and cheats."""

    path: Path
    tasks: list[str]
    mistakes: list[Mistake]
    cheat_base: str
    cheats: list[Cheat]
    alternatives: list[Alternative] = field(default_factory=list)


class LibraryError(CourseError):
    """The mistake library is missing or does not fit the notebooks; the message says what to fix."""


def library_path(course_root: Path, assignment: str) -> Path:
    """Where the mistake library of ``assignment`` is: the instructor package, else the course."""
    packaged = Path(__file__).parent / "mistakes" / f"{assignment}.py"
    if packaged.is_file():
        return packaged
    local = course_root / f"{assignment}_mistakes.py"
    if local.is_file():
        return local
    raise LibraryError(f"no mistake library for {assignment!r}: write {packaged} or {local} "
                       f"(see grader/mnist_grader/library.py for the format)")


def load_library(course_root: Path, assignment: str) -> Library:
    """Load and sanity-check the mistake library of ``assignment``."""
    path = library_path(course_root, assignment)
    spec = importlib.util.spec_from_file_location(f"_mistakes_{assignment}", path)
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    mistakes = list(getattr(module, "MISTAKES", []))
    names = [m.name for m in mistakes]
    if len(set(names)) != len(names):
        raise LibraryError(f"{path}: mistake names must be unique")
    cheat_base = getattr(module, "CHEAT_BASE", None)
    if cheat_base not in names:
        raise LibraryError(f"{path}: CHEAT_BASE must name one of MISTAKES, got {cheat_base!r}")
    cheats = generic_cheats(cheat_base) + list(getattr(module, "CHEATS", []))
    return Library(path=path, tasks=list(getattr(module, "TASKS", [])), mistakes=mistakes,
                   cheat_base=cheat_base, cheats=cheats,
                   alternatives=list(getattr(module, "ALTERNATIVES", [])))
