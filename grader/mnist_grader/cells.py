"""Runs wherever a notebook is read (grader, nbgrader's preprocessors, feedback): nbgrader's cell kinds.

Built on nbgrader's own predicates (``nbgrader.utils.is_grade``, ``is_solution``), so a cell is a
test or an answer here exactly when nbgrader treats it as one.
"""
from __future__ import annotations

from nbgrader import utils


def is_test_cell(cell) -> bool:
    """An autograded test cell: code, graded, not the student's to write."""
    return (cell.get("cell_type") == "code" and bool(utils.is_grade(cell))
            and not utils.is_solution(cell))


def is_answer_cell(cell) -> bool:
    """A code cell the student writes, graded by the test cells (not by hand)."""
    return (cell.get("cell_type") == "code" and bool(utils.is_solution(cell))
            and not utils.is_grade(cell))


def grade_id(cell) -> str | None:
    """The cell's nbgrader id, None for a cell nbgrader does not track."""
    return cell.metadata.get("nbgrader", {}).get("grade_id")
