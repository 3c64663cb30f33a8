"""Feedback a student can read: equations pre-rendered as MathML, test cells named by their task.

nbgrader's feedback page loads MathJax from a CDN (offline, or in JupyterLab's HTML viewer, which
runs no scripts, the equations stay raw LaTeX) and lists every test cell as "Test cell". Two
preprocessors inside nbgrader's ``generate_feedback`` and the course's feedback template
(``grader/mnist_grader/templates/course_feedback``) fix both:

* ``RenderMath`` turns ``$...$`` and ``$$...$$`` in markdown cells into MathML (``latex2mathml``),
  which browsers draw themselves: no script, no network. The template drops the CDN script.
* ``TitleTestCells`` gives each test cell the title of the task it tests (the nearest heading above
  it, and the test's name when one heading covers several tests); the template puts it in the
  table of contents.

``configure_feedback`` is the one place that sets this up: the course's nbgrader_config.py calls it,
so Formgrader's Generate Feedback and ``nbgrader generate_feedback`` write this page, and
``mnist_grader.feedback`` calls it on its app's config (also in a course whose config does not).
"""
from __future__ import annotations

import re
from pathlib import Path

import nbgrader.converters
from jupyter_core.paths import jupyter_path
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

# nbgrader's generate_feedback preprocessors for the course's page. GetGrades first (it reads the
# scores; ``provisional_feedback.AutogradedPartOnly`` goes right after it when asked for), then the
# page's CSS, then the readable parts. nbgrader's ClearHiddenTests is left out on purpose, on every
# path: the course's autograded notebooks never held a hidden test (every autograde, nbgrader's and
# Formgrader's included, runs the sandboxed grader: the student's kernel ran test cells without their
# hidden part, see mnist_grader.trusted.hidden, and what the hidden tests found is the trusted run's
# own message under each test cell), so there is nothing to scrub, and ClearHiddenTests fails the
# whole feedback of a student whose own cell merely contains the hidden-test delimiter text.
FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    f"{__name__}.RenderMath",
    f"{__name__}.TitleTestCells",
]
AUTOGRADED_PART_ONLY_PREPROCESSOR = "mnist_grader.provisional_feedback.AutogradedPartOnly"


def configure_feedback(config, autograded_part_only: bool = False) -> None:
    """Make every ``generate_feedback`` that reads ``config`` write the course's readable page.

    The exporter's settings are its own class's (``FeedbackExporter``), never ``HTMLExporter``'s:
    Formgrader's other pages keep theirs (Manual Grading's ``rubric.ShowRubric``), and the feedback
    runs none of those pages' preprocessors.

    Args:
        config: a traitlets ``Config``: nbgrader_config.py's ``c``, or an nbgrader app's ``config``.
        autograded_part_only: feedback on the autograded part only, each cell still waiting for a
            grader shown as such (``mnist_grader.provisional_feedback``).

    Returns:
        Nothing; ``config`` is changed in place.
    """
    part_only = [AUTOGRADED_PART_ONLY_PREPROCESSOR] if autograded_part_only else []
    config.GenerateFeedback.preprocessors = FEEDBACK_PREPROCESSORS[:1] + part_only + FEEDBACK_PREPROCESSORS[1:]
    config.GenerateFeedback.exporter_class = f"{__name__}.FeedbackExporter"
    config.FeedbackExporter.template_name = TEMPLATE_NAME
    config.FeedbackExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
    config.FeedbackExporter.preprocessors = []

# Code spans first, so a `$` inside backticks is left alone; then display math, then inline math
# (not a `$` followed by a digit and a space, like "costs $5 and").
_MATH = re.compile(r"(?P<code>`+[^`]*`+)|\$\$(?P<display>.+?)\$\$|(?<![\\$])\$(?P<inline>[^$\n]+?)\$(?!\d)",
                   re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$", re.M)
# "(2 points)", "(2 + 2 points)", "(3 points, graded by hand)": the score is shown beside the title
_POINTS = re.compile(r"\s*\((?:\d+(?:\s*\+\s*\d+)*\s+points?\b|[^)]*graded by hand)[^)]*\)")


def latex_to_mathml(source: str) -> str:
    """Markdown with its LaTeX math replaced by MathML; LaTeX that does not convert stays as it is."""
    # Imported here, not with the module: nbgrader_config.py imports this module for every nbgrader
    # command, also from the hub users' environment, which has no latex2mathml (only feedback needs it).
    from latex2mathml.converter import convert

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
