"""Feedback on the autograded part only, for a submission whose hand-graded part is not graded yet.

A feedback page written before the hand grading would show each answer a grader has not graded as
"0 / 3" (nbgrader's ``GetGrades`` reads a missing grade as 0). ``AutogradedPartOnly`` runs after
``GetGrades`` and turns every cell that still waits for a grader (``needs_manual_grade`` in the
gradebook: the written answer, or autograded scores held for review) into a plain cell with a note
"awaiting hand grading" and no score: it leaves the page's table of contents, and the page's total
counts only the autograded points. A banner at the top says that this page is replaced by the full
feedback after the hand grading.

Used by ``python -m mnist_grader.feedback --autograded-part-only`` (``mnist_grader.feedback``); the
page is otherwise the course's feedback page (no hidden tests: see that module).
"""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from traitlets import Bool

#: cell metadata key marking a note this preprocessor added (so a second run adds none)
NOTE_KEY = "autograded_part_only_note"


def _note(text: str):
    cell = new_markdown_cell(text)
    cell.metadata[NOTE_KEY] = True
    return cell


class AutogradedPartOnly(Preprocessor):
    """Hide the score of every cell still waiting for a grader; the total is the autograded part's."""

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        waiting = self._waiting_grade_ids(info)
        if not waiting:
            return nb, resources
        cells, pending_points, pending_score = [], 0.0, 0.0
        for cell in nb.cells:
            if cell.metadata.get(NOTE_KEY):
                continue
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and meta.get("grade_id") in waiting:
                points = float(meta.get("points") or 0.0)
                pending_points += points
                pending_score += float(meta.get("score") or 0.0)
                meta["grade"] = False  # no score on the page, not listed in the contents
                meta.pop("score", None)
                what = "your answer below" if meta.get("solution") else "the test cell below"
                cells.append(_note(f"**Awaiting hand grading ({points:g} points):** a grader has not "
                                   f"graded {what} yet."))
            cells.append(cell)
        banner = _note(
            f"**Feedback on the autograded part.** This page was released when you submitted. "
            f"{pending_points:g} points are graded by hand and are not graded yet (they are not "
            f"counted below, not as 0 either); your full feedback replaces this page once they are.")
        nb.cells = [banner, *cells]
        info["score"] = float(info.get("score") or 0.0) - pending_score
        info["max_score"] = float(info.get("max_score") or 0.0) - pending_points
        info["notebook"] = f"{info['notebook']}, autograded part ({pending_points:g} points await hand grading)"
        return nb, resources

    @staticmethod
    def _waiting_grade_ids(info) -> set[str]:
        """The grade ids of this notebook whose grade still needs a grader (gradebook's word)."""
        with Gradebook(info["db_url"]) as gradebook:
            try:
                notebook = gradebook.find_submission_notebook(info["notebook"], info["assignment"],
                                                              info["student"])
            except MissingEntry:
                return set()
            return {grade.name for grade in notebook.grades if grade.needs_manual_grade}
