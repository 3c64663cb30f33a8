"""Generate example submissions from the assignment itself (never hand-copied).

* ``example-reference``: the released notebooks with every solution cell answered by the source's
  solution (``### BEGIN/END SOLUTION`` lines removed): what a perfect student hands in.
* ``example-blank``: the released notebooks, untouched.
* ``mistake-<name>``: the reference with one solution cell edited (``mnist_grader.library.Mistake``).
* ``cheat-<name>``: a base (blank, reference or a mistake) plus a cheat (``mnist_grader.cheats``).

They are written to ``submitted/<student>/<assignment>/`` like real submissions (with nbgrader's
``timestamp.txt``, as ``nbgrader collect`` writes it), so every later step (grading, feedback,
export) treats them as students. ``example_roster`` names them for the gradebook (``mnist_grader.roster``).
"""
from __future__ import annotations

import copy
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbgrader import utils

from mnist_grader.cheats import CHEAT_MARK  # noqa: F401  (re-exported for the QA)
from mnist_grader.cells import grade_id, is_answer_cell, is_test_cell
from mnist_grader.course import Course, CourseError
from mnist_grader.library import Cheat, Library, LibraryError, Mistake, load_library

REFERENCE = "example-reference"
BLANK = "example-blank"
MISTAKE_PREFIX = "mistake-"
CHEAT_PREFIX = "cheat-"
ALTERNATIVE_PREFIX = "alternative-"
EXAMPLE_PREFIXES = (REFERENCE, BLANK, MISTAKE_PREFIX, CHEAT_PREFIX, ALTERNATIVE_PREFIX)

Notebooks = dict[str, nbformat.NotebookNode]  # notebook name (no .ipynb) -> notebook


def strip_solution_markers(source: str) -> str:
    """A solution cell's source as a student would write it: without nbgrader's markers."""
    keep = [line for line in source.splitlines()
            if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return "\n".join(keep)


def reference_answers(course: Course, assignment: str) -> dict[str, str]:
    """grade_id -> the source's answer, for every solution cell of the assignment."""
    answers: dict[str, str] = {}
    for path in course.source_notebooks(assignment):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if utils.is_solution(cell):
                if grade_id(cell) in answers:
                    raise LibraryError(f"grade_id {grade_id(cell)!r} occurs twice in {assignment}")
                answers[grade_id(cell)] = strip_solution_markers(cell.source)
    return answers


def released_notebooks(course: Course, assignment: str) -> Notebooks:
    """The student version of every notebook (``release/<assignment>``)."""
    folder = course.folder("release", assignment)
    expected = [p.stem for p in course.source_notebooks(assignment)]
    missing = [name for name in expected if not (folder / f"{name}.ipynb").is_file()]
    if missing:
        raise CourseError(f"{folder} lacks {', '.join(missing)}.ipynb: release the assignment first "
                          f"(python -m mnist_grader release --assignment {assignment})")
    return {name: nbformat.read(str(folder / f"{name}.ipynb"), as_version=4) for name in expected}


def find_cell(notebooks: Notebooks, wanted: str, what: str):
    for nb in notebooks.values():
        for cell in nb.cells:
            if grade_id(cell) == wanted:
                return cell
    raise LibraryError(f"{what}: no cell with grade_id {wanted!r} in the notebooks; update the "
                       f"mistake library")


def answered(blank: Notebooks, answers: dict[str, str]) -> Notebooks:
    """The released notebooks with every solution cell replaced by its reference answer."""
    notebooks = copy.deepcopy(blank)
    for nb in notebooks.values():
        for cell in nb.cells:
            if utils.is_solution(cell) and grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
    return notebooks


def apply_mistake(reference: Notebooks, mistake: Mistake) -> Notebooks:
    """The reference notebooks with ``mistake`` made in its cell."""
    notebooks = copy.deepcopy(reference)
    what = f"mistake {mistake.name!r}"
    cell = find_cell(notebooks, mistake.cell, what)
    if mistake.source is not None:
        cell.source = mistake.source
    for old, new in mistake.replace:
        if old not in cell.source:
            raise LibraryError(f"{what}: {old!r} is not in the answer of cell {mistake.cell!r} any "
                               f"more; update the mistake library")
        cell.source = cell.source.replace(old, new)
    if not mistake.replace and mistake.source is None:
        raise LibraryError(f"{what}: give `replace` or `source`")
    return notebooks


def apply_cheat(base: Notebooks, cheat: Cheat, course_root: Path) -> Notebooks:
    """``base`` with ``cheat`` applied (``__COURSE_ROOT__`` in its code becomes the course folder)."""
    notebooks = copy.deepcopy(base)

    def code(text: str):
        return nbformat.v4.new_code_cell(text.replace("__COURSE_ROOT__", str(course_root)))

    for wanted, text in cheat.replace_cells.items():
        if wanted == "*tests*":
            for nb in notebooks.values():
                for cell in nb.cells:
                    if is_test_cell(cell):
                        cell.source = text
        else:
            find_cell(notebooks, wanted, f"cheat {cheat.name!r}").source = text
    for wanted, text in cheat.insert_after.items():
        find_cell(notebooks, wanted, f"cheat {cheat.name!r}")  # clear error when missing
        for nb in notebooks.values():
            for index, cell in enumerate(nb.cells):
                if grade_id(cell) == wanted:
                    nb.cells.insert(index + 1, code(text))
                    break
    for old, new in cheat.edit_answers:
        for nb in notebooks.values():
            for cell in nb.cells:
                if is_answer_cell(cell):
                    cell.source = new + cell.source if not old else cell.source.replace(old, new)
    if cheat.delete_tests:
        for nb in notebooks.values():
            nb.cells = [cell for cell in nb.cells if not is_test_cell(cell)]
    if cheat.insert_top:
        first = notebooks[sorted(notebooks)[0]]
        first.cells.insert(0, code(cheat.insert_top))
    if cheat.insert_bottom:
        notebooks[sorted(notebooks)[-1]].cells.append(code(cheat.insert_bottom))
    return notebooks


def example_set(course: Course, assignment: str, library: Library) -> dict[str, Notebooks]:
    """Every example submission, by student id."""
    blank = released_notebooks(course, assignment)
    reference = answered(blank, reference_answers(course, assignment))
    examples: dict[str, Notebooks] = {REFERENCE: reference, BLANK: blank}
    for mistake in library.mistakes:
        examples[MISTAKE_PREFIX + mistake.name] = apply_mistake(reference, mistake)
    for cheat in library.cheats:
        examples[CHEAT_PREFIX + cheat.name] = apply_cheat(base_of(cheat, examples), cheat,
                                                          course.root)
    for alternative in library.alternatives:
        notebooks = copy.deepcopy(reference)
        for grade_id, answer in alternative.answers.items():
            find_cell(notebooks, grade_id, f"alternative {alternative.name!r}").source = answer
        examples[ALTERNATIVE_PREFIX + alternative.name] = notebooks
    return examples


def base_of(cheat: Cheat, examples: dict[str, Notebooks]) -> Notebooks:
    """The honest submission a cheat is applied on top of."""
    return examples[base_student(cheat)]


def base_student(cheat: Cheat) -> str:
    return {"blank": BLANK, "reference": REFERENCE}.get(cheat.base, MISTAKE_PREFIX + cheat.base)


def write_examples(course: Course, assignment: str, only: list[str] | None = None,
                   clean: bool = False) -> list[str]:
    """Write example submissions into ``submitted/``.

    Args:
        only: student ids to write (default: all).
        clean: first remove every example student (never a real student: only the prefixes above).

    Returns:
        The student ids written.
    """
    library = load_library(course.root, assignment)
    examples = example_set(course, assignment, library)
    unknown = sorted(set(only or []) - set(examples))
    if unknown:
        raise LibraryError(f"unknown example students {unknown}; known: {sorted(examples)}")
    submitted = course.root / course.directories["submitted"]
    # nbgrader's own format (what `nbgrader collect` copies from the exchange)
    submitted_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f %Z")
    if clean and submitted.is_dir():
        for folder in submitted.iterdir():
            if folder.name.startswith(EXAMPLE_PREFIXES):
                shutil.rmtree(folder)
    cheats = {CHEAT_PREFIX + c.name: c for c in library.cheats if c.links}
    written = []
    for student, notebooks in examples.items():
        if only is not None and student not in only:
            continue
        folder = course.folder("submitted", assignment, student)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, str(folder / f"{name}.ipynb"))
        (folder / "timestamp.txt").write_text(submitted_at)
        cheat = cheats.get(student)
        if cheat is not None:
            write_links(folder, cheat, course.root, assignment)
        written.append(student)
    return written


def write_links(folder: Path, cheat: Cheat, course_root: Path, assignment: str) -> None:
    """Put a cheat's symlinks into a written submission folder (see ``Cheat.links``)."""
    for name, target in cheat.links.items():
        target = target.replace("__COURSE_ROOT__", str(course_root)) \
            .replace("__ASSIGNMENT__", assignment)
        names = sorted(p.name for p in folder.glob("*.ipynb")) if name == "*.ipynb" else [name]
        for each in names:
            link = folder / each
            if link.exists() or link.is_symlink():
                link.unlink()
            os.symlink(target.replace("{name}", each), link)


def example_roster(students: list[str]) -> list[dict[str, str]]:
    """Roster rows naming example students by what they are: "Example Reference", "Mistake Softmax
    overflow", "Cheat Read secrets" (first name: the kind; last name: which one)."""
    rows = []
    for student in students:
        kind = next((prefix for prefix in (MISTAKE_PREFIX, CHEAT_PREFIX, ALTERNATIVE_PREFIX)
                     if student.startswith(prefix)), "example-")
        rest = student[len(kind):] if student.startswith(kind) else student
        rows.append({"id": student, "first_name": kind.strip("-").capitalize(),
                     "last_name": rest.replace("-", " ").capitalize(), "email": ""})
    return rows


def example_students(library: Library, honest_only: bool = False) -> list[str]:
    """The example students' ids: the reference, the blank and every mistake, then (unless
    ``honest_only``) every cheat and alternative."""
    honest = [REFERENCE, BLANK] + [MISTAKE_PREFIX + m.name for m in library.mistakes]
    if honest_only:
        return honest
    return honest + [CHEAT_PREFIX + c.name for c in library.cheats] + \
        [ALTERNATIVE_PREFIX + a.name for a in library.alternatives]


def honest_students(course: Course, assignment: str) -> list[str]:
    """The reference, the blank and every mistake (no cheats)."""
    return example_students(load_library(course.root, assignment), honest_only=True)
