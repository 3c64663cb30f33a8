"""The written answer's rubric: on Formgrader's Manual Grading page, nowhere a student looks.

Formgrader's page is made by an nbconvert HTMLExporter with the course's configuration; these tests
make that page from a submission of the released notebook (an answer written in) as Formgrader
does, and an HTML export without a submission (what feedback is) from the same configuration.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter
from nbgrader.apps import NbGrader

from mnist_grader.rubric import RUBRIC_HEADING, hand_graded_answers

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "mnist_mlp"
ANSWER = "A wider layer fits the training images better; the gap grows."


def course_config(monkeypatch):
    monkeypatch.chdir(REPO)
    app = NbGrader()
    app.load_config_file()
    return app.config


def submission(tmp_path) -> Path:
    notebook = nbformat.read(REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in hand_graded_answers(notebook).values():
        cell.source = ANSWER
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(notebook, path)
    return path


def rubric_lines() -> list[str]:
    source = nbformat.read(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    rubrics = hand_graded_answers(source)
    assert rubrics, "the source has no hand-graded answer"
    return [line for cell in rubrics.values() for line in cell.source.splitlines() if "point" in line]


def test_formgrader_page_shows_the_rubric_above_the_answer(tmp_path, monkeypatch):
    html, _ = HTMLExporter(config=course_config(monkeypatch)).from_filename(
        str(submission(tmp_path)), resources={"assignment_id": ASSIGNMENT, "notebook_id": ASSIGNMENT,
                                              "submission_id": "abc"})
    lines = rubric_lines()
    assert all(line.strip("- ").split(":")[0] in html for line in lines), "the rubric is not on the page"
    assert html.index("Rubric") < html.index(ANSWER), "the rubric should come before the student's answer"


def test_other_exports_and_the_release_have_no_rubric(tmp_path, monkeypatch):
    html, _ = HTMLExporter(config=course_config(monkeypatch)).from_filename(str(submission(tmp_path)))
    assert ANSWER in html
    assert RUBRIC_HEADING.split("**")[1] not in html and "Rubric" not in html, "an export without a submission shows the rubric"
    released = (REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert not [line for line in rubric_lines() if line in released], "the release holds the rubric"
