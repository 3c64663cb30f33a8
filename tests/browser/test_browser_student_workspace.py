"""The student's side lives outside the course: `make student` and `make student-lab`, in Chromium.

A student workspace is made beside a course copy; its JupyterLab (rooted at the workspace, with the
student environment where nbgrader's instructor plugins are off) is driven like a student would, and
every way of naming a course file in a URL is tried. The course's secrets exist during the test
(a solution, the gradebook, an autograded and a feedback file with a marker), so a refusal means
"cannot reach", not "not there".
"""
from __future__ import annotations

import urllib.parse

import nbformat
import pytest
from playwright.sync_api import expect

from lab_server import ASSIGNMENT, STUDENT_ENV, run_make, start_lab, stop_lab
from jupyterlab_ui import open_lab, open_menu

SECRET_MARK = "COURSE-SECRET-7f3a"
# What the course holds that no student may read (relative to the course root).
COURSE_SECRETS = (
    f"source/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
    "gradebook.db",
    f"autograded/someone/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
    f"feedback/someone/{ASSIGNMENT}/{ASSIGNMENT}.html",
    f"submitted/someone/{ASSIGNMENT}/{ASSIGNMENT}.ipynb",
)
INSTRUCTOR_ONLY_FOLDERS = {"source", "release", "autograded", "feedback", "submitted", "exchange"}


@pytest.fixture(scope="module")
def student_workspace(course, lab_env, tmp_path_factory):
    """`make student` run in the course, for a workspace beside it (not inside)."""
    workspace = tmp_path_factory.mktemp("student_home") / "mnist-student"
    run_make(course, lab_env, "student", f"STUDENT_DIR={workspace}", f"STUDENT_ENV={STUDENT_ENV}")
    for relative in COURSE_SECRETS[2:]:  # the grading state a real course would have by now
        path = course / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(SECRET_MARK)
    return workspace


@pytest.fixture(scope="module")
def student_lab(course, lab_env, student_workspace, tmp_path_factory):
    server = start_lab(course, lab_env, tmp_path_factory.mktemp("logs") / "student_lab.log",
                       target="student-lab",
                       make_vars=(f"STUDENT_DIR={student_workspace}", f"STUDENT_ENV={STUDENT_ENV}"))
    yield server
    stop_lab(server)


def test_make_student_fetches_the_student_version_outside_the_course(course, student_workspace):
    assert course not in student_workspace.parents
    notebooks = sorted((student_workspace / ASSIGNMENT).glob("*.ipynb"))
    assert [p.name for p in notebooks] == [f"{ASSIGNMENT}.ipynb"], notebooks
    text = notebooks[0].read_text()
    assert "raise NotImplementedError()" in text, "the fetched notebook should have the blanks"
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert secret not in text, f"the student's notebook contains {secret!r}"


def test_regenerating_the_release_keeps_the_students_work(course, lab_env, student_workspace):
    notebook_path = student_workspace / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell("my_answer = 'student work, keep me'"))
    nbformat.write(notebook, notebook_path)
    run_make(course, lab_env, "publish")  # what `make lab` and `make release` do to the course
    run_make(course, lab_env, "student", f"STUDENT_DIR={student_workspace}", f"STUDENT_ENV={STUDENT_ENV}")
    assert "student work, keep me" in notebook_path.read_text(), "the student's work was overwritten"


def test_student_lab_has_no_formgrader_and_shows_only_the_workspace(page, student_lab, student_workspace):
    open_lab(page, student_lab)
    items = page.locator(".jp-DirListing-content .jp-DirListing-itemText")
    expect(items.filter(has_text=ASSIGNMENT).first).to_be_visible(timeout=30_000)
    page.shot("student's jupyterlab")
    listed = set(items.all_inner_texts())
    assert ASSIGNMENT in listed, f"the student's file browser should show {ASSIGNMENT}/: {listed}"
    assert not listed & (INSTRUCTOR_ONLY_FOLDERS | {"gradebook.db"}), f"the student sees course files: {listed}"

    items = open_menu(page, "Nbgrader").locator(".lm-Menu-itemLabel").all_inner_texts()
    page.shot("student's nbgrader menu")
    page.keyboard.press("Escape")
    assert "Assignment List" in items, f"the student's Nbgrader menu lacks the Assignment List: {items}"
    assert "Formgrader" not in items and "Course List" not in items, f"instructor items for a student: {items}"


def _url_forms(course, workspace, relative: str) -> list[str]:
    """Ways to name a course file from the student's server: up out of the root, plain and encoded,
    and by absolute path."""
    up = "/".join([".."] * len(workspace.relative_to(workspace.anchor).parts))
    absolute = str(course / relative).lstrip("/")
    via_parent = f"{up}/{absolute}"
    forms = []
    for api in ("files", "api/contents"):
        forms += [f"{api}/{via_parent}", f"{api}/{urllib.parse.quote(via_parent, safe='')}",
                  f"{api}/%2F{urllib.parse.quote(absolute, safe='')}",
                  f"{api}/{relative}"]  # as if the course were the root
    return forms


def test_course_files_cannot_be_reached_by_url(page, student_lab, student_workspace, course):
    # The same forms reach the student's own notebook: the refusals below are not a broken URL.
    own = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
    for path in (f"files/{own}", f"api/contents/{own}"):
        response = page.request.get(student_lab.url(path))
        assert response.status == 200, f"{path}: {response.status}; the student cannot open their own notebook"

    reached = []
    for relative in COURSE_SECRETS:
        assert (course / relative).exists(), f"the test's course lacks {relative}"
        for path in _url_forms(course, student_workspace, relative):
            response = page.request.get(student_lab.url(path))
            body = response.body()
            if response.status < 400 or SECRET_MARK.encode() in body or b"BEGIN SOLUTION" in body \
                    or b"SQLite format" in body:
                reached.append(f"{path} -> {response.status}")
    for path in ("formgrader", "formgrader/api/assignments", "formgrader/gradebook"):
        response = page.request.get(student_lab.url(path))
        if response.status < 400:
            reached.append(f"{path} -> {response.status}")
    page.goto(student_lab.url(f"files/{urllib.parse.quote('../' * 8, safe='')}{COURSE_SECRETS[0]}"))
    page.shot("a course file asked for by url")
    assert not reached, "the student's server served course files or Formgrader:\n" + "\n".join(reached)
