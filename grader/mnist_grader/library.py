"""The declarative vocabulary of example submissions: mistakes and cheats, and where libraries live.

A *mistake library* is a small Python file per assignment (``grader/mnist_grader/mistakes/<assignment>.py``,
or ``<course>/<assignment>_mistakes.py``) defining:

* ``TASKS``: the grade ids of the solution cells that are graded by tests (each needs >= 2 mistakes);
* ``MISTAKES``: a list of ``Mistake`` (an edit of one solution cell of the reference answers, and the
  test cells that must lose points because of it);
* ``CHEAT_BASE``: the name of a mistake whose answers run but are wrong (cheats that try to make wrong
  answers pass are applied on top of it: they must not score more than it does);
* ``CHEATS`` (optional): assignment-specific ``Cheat`` entries, added to the generic ones in
  ``mnist_grader.cheats``;
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

from mnist_grader.course import CourseError


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
class Cheat:
    """An attempt to get points without earning them, or to harm the grader.

    Args:
        name: short id (``cheat-<name>``).
        why: what it tries.
        base: "blank", "reference", or a mistake name: the honest work it is applied on top of.
        insert_top: code for a new cell at the very top of the (first) notebook.
        insert_after: {solution grade_id: code} new cells inserted after these cells.
        replace_cells: {grade_id: new source} for solution cells (answers) or test cells (tampering).
        edit_answers: (old, new) text replacements applied to every code answer cell (an empty
            ``old`` puts ``new`` in front of the answer).
        insert_bottom: code for a new cell at the very end of the (last) notebook.
        links: {name in the submission folder: symlink target} ("*.ipynb" replaces every notebook
            by a link; ``{name}`` in its target is the notebook's file name, ``__COURSE_ROOT__``
            the course folder, ``__ASSIGNMENT__`` the assignment).
        delete_tests: remove every test cell from the submission.
        may_fail: grading this may legitimately fail (the submission is then flagged and scores 0
            when it had no earlier grade).
    """

    name: str
    why: str
    base: str = "blank"
    insert_top: str | None = None
    insert_after: dict[str, str] = field(default_factory=dict)
    replace_cells: dict[str, str] = field(default_factory=dict)
    edit_answers: list[tuple[str, str]] = field(default_factory=list)
    insert_bottom: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    delete_tests: bool = False
    may_fail: bool = False


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
    from mnist_grader.cheats import generic_cheats

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
