"""Feedback a student can read: equations pre-rendered as MathML, test cells named by their task.

nbgrader's feedback page loads MathJax from a CDN (offline, or in JupyterLab's HTML viewer, which
runs no scripts, the equations stay raw LaTeX) and lists every test cell as "Test cell". Two
preprocessors, run by ``mnist_grader.feedback`` inside nbgrader's ``generate_feedback``, and the
course's feedback template (``grader/mnist_grader/templates/course_feedback``) fix both:

* ``RenderMath`` turns ``$...$`` and ``$$...$$`` in markdown cells into MathML (``latex2mathml``),
  which browsers draw themselves: no script, no network. The template drops the CDN script.
* ``TitleTestCells`` gives each test cell the title of the task it tests (the nearest heading above
  it, and the test's name when one heading covers several tests); the template puts it in the
  table of contents.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbgrader.converters
from jupyter_core.paths import jupyter_path
from latex2mathml.converter import convert
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, default

from mnist_grader.cells import is_test_cell

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAME = "course_feedback"
# nbgrader's feedback template (feedback/index.html.j2), which the course's extends.
NBGRADER_TEMPLATES = Path(nbgrader.converters.__file__).resolve().parent.parent / "server_extensions" / \
    "formgrader" / "templates"
TITLE_KEY = "feedback_title"

# Code spans first, so a `$` inside backticks is left alone; then display math, then inline math
# (not a `$` followed by a digit and a space, like "costs $5 and").
_MATH = re.compile(r"(?P<code>`+[^`]*`+)|\$\$(?P<display>.+?)\$\$|(?<![\\$])\$(?P<inline>[^$\n]+?)\$(?!\d)",
                   re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$", re.M)
_POINTS = re.compile(r"\s*\((?:\d+ points?|[^)]*graded by hand)[^)]*\)")


def latex_to_mathml(source: str) -> str:
    """Markdown with its LaTeX math replaced by MathML; LaTeX that does not convert stays as it is."""
    def replace(match: re.Match) -> str:
        if match.group("code"):
            return match.group("code")
        display = match.group("display") is not None
        latex = match.group("display") if display else match.group("inline")
        try:
            mathml = convert(latex.strip(), display="block" if display else "inline")
        except Exception:  # noqa: BLE001 - an unknown macro must not cost the student their feedback
            return match.group(0)
        # A display equation is its own block, so markdown does not wrap it into a paragraph.
        return f"\n\n{mathml}\n\n" if display else mathml

    return _MATH.sub(replace, source)


def _heading_text(markdown: str) -> str | None:
    headings = _HEADING.findall(markdown)
    if not headings:
        return None
    text = _POINTS.sub("", headings[-1]).replace("`", "")
    return text.strip() or None


def _test_name(grade_id: str) -> str:
    return re.sub(r"^tests?_", "", grade_id).replace("_", " ")


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter, also finding templates by their path below nbgrader's template
    folder, so the course's template can extend ``feedback/index.html.j2``."""

    @default("template_data_paths")
    def _template_data_paths_default(self):
        return [*jupyter_path("nbconvert", "templates"), str(NBGRADER_TEMPLATES)]


class RenderMath(Preprocessor):
    """LaTeX math in markdown cells -> MathML (see module docstring)."""

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown" and "$" in cell.source:
            cell.source = latex_to_mathml(cell.source)
        return cell, resources


class TitleTestCells(Preprocessor):
    """Sets ``cell.metadata.feedback_title`` of each test cell to its task's title."""

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess(self, nb, resources):
        heading, tests_under = None, {}
        titles = []
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                heading = _heading_text(cell.source) or heading
            elif is_test_cell(cell):
                titles.append((cell, heading))
                tests_under[heading] = tests_under.get(heading, 0) + 1
        for cell, heading in titles:
            name = _test_name(cell.metadata.nbgrader["grade_id"])
            if heading is None:
                title = f"Tests: {name}"
            elif tests_under[heading] > 1:
                title = f"{heading}: {name}"
            else:
                title = heading
            cell.metadata[TITLE_KEY] = title
        return nb, resources
