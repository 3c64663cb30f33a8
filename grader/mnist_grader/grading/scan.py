"""Runs in the grading command (the parent): flags for extra cells that reach for the machinery.

Code in a student's own extra cells that reaches for the grading machinery is flagged for a look.

Solution cells are judged by ``mnist_grader.trusted.policy`` (a whitelist; code outside it holds the
submission's scores for review). Cells a student adds or edits outside the solution cells never
reach the trusted run, so they cannot raise a grade (a test cell scores the lower of the student's
kernel and the trusted run); code there that reaches for the interpreter's or IPython's machinery is
still worth a look, so it is flagged (never held). Only the policy's "machinery" reasons count here:
an extra cell that imports matplotlib to look at a digit is not flagged.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbgrader import utils

from mnist_grader.trusted import policy


def machinery_flags(notebook_path: Path) -> list[str]:
    """Reasons to flag the student's extra code cells of a submitted notebook (data only).

    Returns:
        e.g. ["cell 3, line 2: uses get_ipython (IPython's machinery)"]; empty when clean.
    """
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as exc:  # an unreadable notebook is itself worth a look
        return [f"cannot be read as a notebook ({type(exc).__name__})"]
    extra = {}
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code" or utils.is_solution(cell) or utils.is_grade(cell) \
                or utils.is_locked(cell):
            continue  # answers go through the policy; instructor cells are restored by nbgrader
        extra[f"cell {index}"] = cell.source if isinstance(cell.source, str) else ""
    flags = []
    with policy.SYNTAX_TREE_LOCK:
        reviews = policy.review_extra_cells(extra)
    for where, review in reviews.items():
        flags += [f"{where}, {reason}" for reason in review]
    return flags
