"""A real JupyterLab and a real Chromium for the end-to-end tests.

Each test session copies the course into a temporary folder and starts it with `make lab` (which
releases the assignment into the course's exchange and runs `jupyter lab` there) on 127.0.0.1,
with temporary Jupyter/IPython/matplotlib/XDG folders; the instructor tooling makes and grades a
few example submissions in the same copy. Chromium is driven through playwright's sync API; the
server is stopped by its PID. BROWSER_TEST_COURSE=<folder> tests another checkout's course.

Chromium comes from the Debian package (`apt-get install -y chromium`); playwright's own browser
download is never used. Without /usr/bin/chromium a local run skips these tests with a message;
with CI=true it fails instead, so CI can never silently lose them.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from nbgrader.api import Gradebook

from deploy.course_copy import CourseCopyError, copy_course
from jupyterlab_ui import Screenshots
from lab_server import (
    ASSIGNMENT, BLANK_STUDENT, CHROMIUM, CHROMIUM_FLAGS, COURSE_SRC, EXAMPLE_STUDENTS, REFERENCE_STUDENT,
    SCREENSHOTS, VENV_BIN, VIEWPORT, isolated_env, run_instructor, skip_or_fail, start_lab, stop_lab,
)


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(
            f"browser tests need Chromium at {CHROMIUM}: install it with "
            "`apt-get install -y chromium` (Debian/Ubuntu) or set CHROMIUM_PATH; "
            "never `playwright install`"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_env(tmp_path_factory, real_mnist_root) -> dict[str, str]:
    """The server's environment; its kernels read the real MNIST files through $MNIST_ROOT."""
    env = isolated_env(tmp_path_factory.mktemp("jupyter_home"))
    env["MNIST_ROOT"] = str(real_mnist_root)
    return env


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Path:
    """A copy of the course folder (what `make lab` needs), sharing this checkout's .venv."""
    root = tmp_path_factory.mktemp("course")
    try:
        copy_course(COURSE_SRC, root)  # keeps mtimes: make must see .venv as up to date
    except CourseCopyError as err:
        skip_or_fail(f"the course is not built yet: {err}")
    (root / ".venv").symlink_to(VENV_BIN.parent)
    return root


@pytest.fixture(scope="session")
def example_submissions(lab, lab_env) -> Path:
    """The grader's example submissions (reference answers, blank, one typical mistake) in
    submitted/, made by the instructor tooling from the release `make lab` generated, and their
    names imported into the gradebook from a roster, as `make demo` does."""
    run_instructor(lab.root, lab_env, "examples", "--only", *EXAMPLE_STUDENTS, "--roster", "roster.csv")
    run_instructor(lab.root, lab_env, "roster", "roster.csv")
    return lab.root / "submitted"


def hand_grade(course: Path) -> None:
    """What a grader's Manual Grading in Formgrader stores: a score for every cell that needs one
    (the written answer): full points for an answer, 0 for the blank."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in EXAMPLE_STUDENTS:
            for notebook in gradebook.find_submission(ASSIGNMENT, student).notebooks:
                for grade in notebook.grades:
                    if grade.needs_manual_grade:
                        grade.manual_score = 0 if student == BLANK_STUDENT else grade.max_score
                        grade.needs_manual_grade = False
        gradebook.db.commit()


@pytest.fixture(scope="session")
def graded_course(example_submissions, lab, lab_env) -> Path:
    """The examples autograded (in parallel, sandboxed), graded by hand, then given feedback, in
    the order a course runs (feedback waits for the hand grades)."""
    run_instructor(lab.root, lab_env, "autograde", "-j", "2", "--no-progress", "--student", *EXAMPLE_STUDENTS)
    hand_grade(lab.root)
    run_instructor(lab.root, lab_env, "feedback")
    return lab.root


@pytest.fixture(scope="session")
def reference_folder(example_submissions, course) -> Path:
    """A student's folder holding the reference answers: the grader's reference submission (the
    released notebooks with the solutions filled in), copied where a fetched assignment would sit."""
    folder = course / "reference" / ASSIGNMENT
    shutil.copytree(example_submissions / REFERENCE_STUDENT / ASSIGNMENT, folder)
    return folder


@pytest.fixture(scope="session")
def lab(course, lab_env, tmp_path_factory):
    """One JupyterLab server (`make lab`) for the whole session, stopped by its PID at the end."""
    server = start_lab(course, lab_env, tmp_path_factory.mktemp("logs") / "jupyter_lab.log")
    yield server
    stop_lab(server)


@pytest.fixture(scope="session")
def playwright_driver():
    """Playwright's sync API, started once for the session (it cannot run twice in one thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def chromium_env(tmp_path_factory) -> dict[str, str]:
    """Chromium writes caches and crash reports under HOME/XDG folders too: keep them temporary."""
    return isolated_env(tmp_path_factory.mktemp("chromium_home"))


@pytest.fixture(scope="session")
def browser(chromium_path, playwright_driver, chromium_env, tmp_path_factory):
    """One person's browser: a Chromium context with a profile folder of its own."""
    profile = tmp_path_factory.mktemp("chromium_profile")
    # A persistent context is the way to give Chromium a --user-data-dir of our choosing.
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile), executable_path=str(chromium_path), headless=True, env=chromium_env,
        args=CHROMIUM_FLAGS, viewport=VIEWPORT,
    )
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture(scope="module")
def chromium(chromium_path, playwright_driver, chromium_env):
    """A Chromium for several people at once: each `new_context()` is a browser of its own (its own
    cookies, so one person's login never serves another's request); profiles are temporary."""
    instance = playwright_driver.chromium.launch(executable_path=str(chromium_path), headless=True,
                                                 env=chromium_env, args=CHROMIUM_FLAGS)
    yield instance
    instance.close()


@pytest.fixture
def page(browser, request):
    """A fresh tab; on failure the last state is saved as a screenshot too."""
    tab = browser.new_page()
    console_errors: list[str] = []
    tab.on("pageerror", lambda exc: console_errors.append(str(exc)))
    tab.console_errors = console_errors
    tab.shot = Screenshots(tab, SCREENSHOTS / request.node.name)
    yield tab
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        try:
            tab.shot("failure", full_page=True)
        except Exception:  # noqa: BLE001 - a dead page must not hide the real failure
            pass
    tab.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS.is_dir() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"browser screenshots: {SCREENSHOTS}")
