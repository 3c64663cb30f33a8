"""Runs in the ``nbgrader autograde`` process: deleted test cells put back where they were.

A fix of nbgrader 0.9.6's ``add_missing_cells``.

nbgrader's ``OverwriteCells.add_missing_grade_cells`` re-inserts a deleted grade cell after "the
previous solution/grade cell", but looks up the previous cell of the SOURCE notebook, whatever it is.
When that is a locked cell (as in mnist_mlp: ``load_data`` before ``test_read_idx``) the lookup
raises ``KeyError`` and autograde fails for that student. ``RestoreDeletedCells`` inserts each
missing grade cell after the nearest earlier source cell the submission still has (or at the top).
"""
from __future__ import annotations

from nbgrader.preprocessors import OverwriteCells


class RestoreDeletedCells(OverwriteCells):
    """nbgrader's OverwriteCells with a robust ``add_missing_grade_cells`` (see the module docstring).

    Configured like ``OverwriteCells`` (e.g. ``OverwriteCells.add_missing_cells = True``).
    """

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = list(source_nb.source_cells)
        grade_cells = {cell.name: cell for cell in source_nb.grade_cells}
        solution_ids = {cell.name for cell in source_nb.solution_cells}
        for index, source_cell in enumerate(source_cells):
            if source_cell.name not in grade_cells:
                continue
            present = {}
            for i, cell in enumerate(nb.cells):  # restored cells carry plain dict metadata
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if grade_id is not None:
                    present[grade_id] = i
            if source_cell.name in present:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook",
                             source_cell.name)
            cell = self.missing_cell_transform(source_cell, grade_cells[source_cell.name].max_score,
                                               is_solution=source_cell.name in solution_ids)
            where = 0
            for earlier in reversed(source_cells[:index]):
                if earlier.name in present:
                    where = present[earlier.name] + 1
                    break
            nb.cells.insert(where, cell)
        return nb, resources
