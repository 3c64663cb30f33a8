"""The rubric of a hand-graded answer, shown above the student's answer in Formgrader's Manual Grading.

The rubric of a written answer is the source notebook's text of that answer cell (``source/`` only:
students get an empty cell). nbgrader's Formgrader shows the autograded notebook, which holds the
student's answer and nothing of the source, so a grader would grade blind. ``ShowRubric`` is a
preprocessor of Formgrader's page (``c.HTMLExporter.preprocessors`` in nbgrader_config.py): while
the page is made it puts a read-only markdown cell with the rubric above each hand-graded markdown
answer. The autograded notebook on disk is never changed, so neither feedback nor anything a student
receives can contain the rubric.

Formgrader's page is the only HTML export whose resources name a submission (``submission_id``); the
same configuration also reaches other HTML exports, and those are left alone. (The feedback exporter,
``readable_feedback.FeedbackExporter``, has preprocessors of its own and never runs this one.)
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Unicode

RUBRIC_HEADING = "**Rubric** (from the source notebook; shown in Formgrader only, never to students)"


def hand_graded_answers(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    """grade_id -> cell, for the markdown answer cells that are graded by hand."""
    answers = {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution") and meta.get("grade_id"):
            answers[meta["grade_id"]] = cell
    return answers


class ShowRubric(Preprocessor):
    """Put each hand-graded answer's rubric (its source cell) above the answer, in Formgrader's page only."""

    source_folder = Unicode("", help="The course's source folder (source/<assignment>/<notebook>.ipynb).").tag(
        config=True)

    def preprocess(self, nb, resources):
        """Args:
            nb: the autograded notebook Formgrader shows.
            resources: Formgrader's (``assignment_id``, ``notebook_id``, ``submission_id``).

        Returns:
            The notebook with rubric cells inserted (a copy), and the resources unchanged.
        """
        if "submission_id" not in resources or not self.source_folder:
            return nb, resources
        source = Path(self.source_folder) / resources["assignment_id"] / f"{resources['notebook_id']}.ipynb"
        if not source.is_file():
            self.log.warning("no source notebook %s: Formgrader shows no rubric", source)
            return nb, resources
        rubrics = hand_graded_answers(nbformat.read(source, as_version=4))
        shown = nbformat.from_dict(nb)
        cells = []
        for cell in shown.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if cell.cell_type == "markdown" and grade_id in rubrics:
                cells.append(nbformat.v4.new_markdown_cell(f"{RUBRIC_HEADING}\n\n{rubrics[grade_id].source}"))
            cells.append(cell)
        shown.cells = cells
        return shown, resources
