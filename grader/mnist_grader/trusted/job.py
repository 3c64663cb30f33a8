"""What one trusted run executes, built from the instructor's source notebooks (runs in the parent).

For each source notebook, cell by cell in the instructor's order: a locked instructor cell is taken
from ``source/`` (trusted); a solution cell is taken from the student's notebook, matched by nbgrader
``grade_id`` and reviewed by ``mnist_grader.trusted.policy``; a test cell is taken from ``source/``
whole, hidden tests included, with the line numbers of its hidden part (nbgrader's configured
hidden-test delimiters). The student's notebook is read as data only (JSON), never executed here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

from mnist_grader.cells import is_answer_cell
from mnist_grader.trusted import policy
from mnist_grader.trusted.hidden import hidden_line_numbers


@dataclass
class NotebookJob:
    """The cells one notebook contributes to a trusted run, and the policy's review of its answers.

    Args:
        name: notebook name without ``.ipynb``.
        cells: [{"kind": "lab"|"student"|"test", "id", "source", "hidden_lines"}].
        reviews: {solution grade_id: CellReview}.
        missing: solution cells the student's notebook does not have.
    """

    name: str
    cells: list[dict]
    reviews: dict[str, policy.CellReview] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def holds(self) -> list[str]:
        return [f"{self.name}/{cell}: {why}" for cell, review in self.reviews.items()
                for why in review.holds]

    @property
    def dropped(self) -> list[str]:
        return [f"{self.name}/{cell}: {what}" for cell, review in self.reviews.items()
                for what in review.dropped]


def _student_answers(submitted: Path | None) -> dict[str, str]:
    """{grade_id: source} of the code solution cells in the student's notebook (data only)."""
    if submitted is None or not submitted.is_file():
        return {}
    try:
        nb = nbformat.read(str(submitted), as_version=4)
    except Exception:  # an unreadable notebook has no answers; nbgrader reports it too
        return {}
    answers: dict[str, str] = {}
    for cell in nb.cells:
        if is_answer_cell(cell):
            grade_id = cell.metadata.nbgrader.get("grade_id")
            if isinstance(grade_id, str) and grade_id not in answers:
                answers[grade_id] = cell.source if isinstance(cell.source, str) else ""
    return answers


def lab_imports(sources: list[Path]) -> list[str]:
    """The modules the instructor's locked cells import, and candidates for submodules (what a
    trusted-run server preloads)."""
    import ast

    modules: set[str] = set()
    for source in sources:
        for cell in nbformat.read(str(source), as_version=4).cells:
            if cell.cell_type != "code" or not utils.is_locked(cell) or utils.is_grade(cell):
                continue
            try:
                with policy.SYNTAX_TREE_LOCK:
                    tree = ast.parse(cell.source)
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    modules.update(alias.name for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    modules.add(node.module)
                    # `from helpers import plots` imports a submodule; the server skips names
                    # that are not modules
                    modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return sorted(modules)


def build_notebook_job(source: Path, submitted: Path | None, delimiters: ClearHiddenTests,
                       skip: frozenset[str] = frozenset()) -> NotebookJob:
    """The trusted run's cells for one notebook.

    Args:
        source: the instructor's notebook in ``source/``.
        submitted: the student's notebook (a safe copy), or None when it was not handed in.
        delimiters: nbgrader's ``ClearHiddenTests`` as the course configures it.
        skip: grade ids of locked cells the trusted run leaves out (cells that only show things).
    """
    nb = nbformat.read(str(source), as_version=4)
    answers = _student_answers(submitted)
    cells, lab_sources, student_sources, missing = [], [], {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        grade_id = meta.get("grade_id", f"cell-{len(cells)}")
        if is_answer_cell(cell):
            if grade_id not in answers:
                missing.append(grade_id)
            student_sources[grade_id] = answers.get(grade_id, "")
            cells.append({"kind": "student", "id": grade_id, "source": student_sources[grade_id]})
        elif utils.is_grade(cell):
            cells.append({"kind": "test", "id": grade_id, "source": cell.source,
                          "hidden_lines": hidden_line_numbers(cell.source, delimiters)})
        elif grade_id not in skip:
            lab_sources.append(cell.source)
            cells.append({"kind": "lab", "id": grade_id, "source": cell.source})
    tests = [c["source"] for c in cells if c["kind"] == "test"]
    with policy.SYNTAX_TREE_LOCK:
        reviews = policy.review(student_sources, lab_sources, tests)
    return NotebookJob(name=source.stem, cells=cells, reviews=reviews, missing=missing)
