"""Where hidden tests live during grading: never in the student's kernel (runs in the grading parent).

nbgrader's ``autograde`` restores every test cell from the gradebook before it runs the student's
notebook, hidden tests included. The scratch gradebook of each submission is therefore given test
cells WITHOUT their hidden region (removed with nbgrader's own ``ClearHiddenTests``, as the course
configures its delimiters, and with matching checksums, so nbgrader sees the student's copies as
unchanged): the student's kernel runs the visible tests only. The whole cells, hidden part included,
run in the trusted run (``mnist_grader.trusted.runner``).
"""
from __future__ import annotations

from pathlib import Path

from nbformat import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import ClearHiddenTests
from traitlets.config import Config


def hidden_test_delimiters(config: Config) -> ClearHiddenTests:
    """nbgrader's ``ClearHiddenTests`` with the course's delimiters."""
    return ClearHiddenTests(config=config)


def strip_hidden_tests(db_path: Path, assignment: str, delimiters: ClearHiddenTests) -> int:
    """Remove the hidden region of every test cell in a (scratch) gradebook.

    Returns:
        How many cells had hidden tests.
    """
    stripped = 0
    with Gradebook(f"sqlite:///{db_path}") as gb:
        for notebook in gb.find_assignment(assignment).notebooks:
            grade_cells = {cell.name: cell for cell in notebook.grade_cells}
            for source_cell in notebook.source_cells:
                grade_cell = grade_cells.get(source_cell.name)
                if grade_cell is None or source_cell.cell_type != "code":
                    continue
                cell = NotebookNode(cell_type="code", source=source_cell.source or "", metadata=
                                    NotebookNode(nbgrader=NotebookNode(
                                        grade=True, solution=False, locked=source_cell.locked,
                                        grade_id=source_cell.name,
                                        points=grade_cell.max_score)))
                if delimiters._remove_hidden_test_region(cell):
                    source_cell.source = cell.source
                    source_cell.checksum = utils.compute_checksum(cell)
                    stripped += 1
        gb.db.commit()
    return stripped


def hidden_line_numbers(source: str, delimiters: ClearHiddenTests) -> list[int]:
    """1-based line numbers of a cell's hidden region (the delimiter lines included)."""
    lines, inside = [], False
    for number, line in enumerate(source.split("\n"), start=1):
        if delimiters.begin_test_delimeter in line:
            inside = True
            lines.append(number)
        elif delimiters.end_test_delimeter in line:
            inside = False
            lines.append(number)
        elif inside:
            lines.append(number)
    return lines
