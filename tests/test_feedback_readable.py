"""Feedback a student can read: equations drawn without a CDN, test cells named by their task.

A small course is generated here (a notebook with display and inline equations, two tasks, one of
them with two test cells, a hidden test and a hand-graded written answer) under the course's own
nbgrader_config.py, and graded by real nbgrader (through the sandboxed grader, as that config says)
and by hand. Every way a course makes feedback writes the readable page: `python -m mnist_grader
feedback`, plain `nbgrader generate_feedback` and Formgrader's Generate Feedback button (its HTTP
endpoint in a real Jupyter server). nbgrader's own page, written in a copy of the course whose config
lacks the feedback settings, is the other side. The page is then opened in Chromium, offline, to see the equations drawn as math.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from mnist_grader.jupyter_env import private_dirs
from mnist_grader.readable_feedback import latex_to_mathml
from mnist_grader.rubric import RUBRIC_HEADING
from tests.grader_course import formgrader_page, formgrader_post, formgrader_server
from tests.test_feedback import hidden_test_lines, leaks

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
STUDENT = "ada"
DISPLAY = r"p_k = \frac{e^{z_k}}{\sum_j e^{z_j}} \qquad (1)"
RUBRIC = "Rubric for the grader: full marks for saying that exp overflows without the subtraction."
ANSWER = "Subtracting the largest logit keeps every exponent at most zero."
# Where each way of making feedback writes its pages (feedback folders of the same course).
OURS, COMMAND, BUTTON, NBGRADERS = "feedback", "command_feedback", "button_feedback", "nbgrader_feedback"
READABLE = (OURS, COMMAND, BUTTON)


def _cell(kind: str, source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata.nbgrader = {"schema_version": 3, "locked": False, "solution": False,
                                  "grade": False, "points": 0, **nbgrader}
    return cell


def _source_notebook() -> nbformat.NotebookNode:
    cells = [
        _cell("md", f"## Part 1: softmax\n\n### 1.1 `softmax` (1 + 1 points)\n\nFor logits $z \\in \\mathbb{{R}}^{{3}}$:\n\n"
                    f"$${DISPLAY}$$\n\nKeep `$HOME` and code like `a$b` as they are."),
        _cell("code", "import math\ndef softmax(z):\n    ### BEGIN SOLUTION\n"
                      "    m = max(z)\n    e = [math.exp(v - m) for v in z]\n    return [v / sum(e) for v in e]\n"
                      "    ### END SOLUTION", solution=True, grade_id="softmax_answer"),
        _cell("code", "assert abs(sum(softmax([1.0, 2.0, 3.0])) - 1) < 1e-9", grade=True,
              grade_id="test_softmax_sums_to_one", points=1, locked=True),
        _cell("code", "assert softmax([1000.0, 0.0])[0] > 0.99", grade=True,
              grade_id="test_softmax_large_logits", points=1, locked=True),
        _cell("md", "### 1.2 The maximum (1 point)\n\nReturn $\\max_j z_j$."),
        _cell("code", "def biggest(z):\n    ### BEGIN SOLUTION\n    return max(z)\n    ### END SOLUTION",
              solution=True, grade_id="biggest_answer"),
        _cell("code", "assert biggest([1, 5, 2]) == 5\n### BEGIN HIDDEN TESTS\n"
                      "assert biggest([-3, -1, -2]) == -1, 'hidden check: all negative'\n### END HIDDEN TESTS",
              grade=True, grade_id="test_biggest", points=1, locked=True),
        _cell("md", "### 1.3 Why subtract the maximum? (1 point, graded by hand)"),
        _cell("md", RUBRIC, solution=True, grade=True, grade_id="why_subtract", points=1),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _env(course: Path) -> dict[str, str]:
    """This venv's tools first, Jupyter's folders private to the course (below course/jupyter)."""
    return dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
                **private_dirs(course / "jupyter"))


def _run(cmd: list[str], cwd: Path) -> None:
    """Run ``cmd`` in ``cwd`` with Jupyter's folders private to the course (below cwd/jupyter)."""
    proc = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def _submit_and_grade(root: Path) -> None:
    """The solutions handed in as a student's, autograded by `nbgrader autograde` (the course's
    config sends it to the sandboxed grader), the written answer graded by hand."""
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "week1", "--force"], root)
    submission = _source_notebook()  # the solutions, markers gone, like a student's answers
    for cell in submission.cells:
        cell.source = "\n".join(l for l in cell.source.splitlines() if "### BEGIN" not in l and "### END" not in l)
    released = nbformat.read(str(root / "release" / "week1" / "week1.ipynb"), as_version=4)
    for cell, answered in zip(released.cells, submission.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = ANSWER if cell.cell_type == "markdown" else answered.source
    (root / "submitted" / STUDENT / "week1").mkdir(parents=True)
    nbformat.write(released, str(root / "submitted" / STUDENT / "week1" / "week1.ipynb"))
    _run([sys.executable, "-m", "nbgrader", "autograde", "week1", "--force"], root)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:  # what Manual Grading stores
        for grade in gradebook.find_submission_notebook("week1", "week1", STUDENT).grades:
            if grade.needs_manual_grade:
                grade.manual_score, grade.needs_manual_grade = grade.max_score, False
        gradebook.db.commit()


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    """A course under this repository's nbgrader_config.py with one graded submission, and its
    feedback written every way a course writes it (folders ``READABLE``), and by nbgrader without
    the course's feedback settings (``NBGRADERS``)."""
    root = tmp_path_factory.mktemp("feedback_course") / "course"
    (root / "source" / "week1").mkdir(parents=True)
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")  # it roots itself at its folder
    nbformat.write(_source_notebook(), str(root / "source" / "week1" / "week1.ipynb"))
    _submit_and_grade(root)
    # Formgrader's Generate Feedback button, then its Manual Grading page of the submission
    with formgrader_server(root, _env(root), root.parent / "server.log") as (base, token):
        reply = formgrader_post(base, token, f"assignment/week1/{STUDENT}/generate_feedback")
        assert reply["success"], reply.get("log", "")[-3000:] + reply.get("error", "")[-3000:]
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
            notebook_id = gradebook.find_submission_notebook("week1", "week1", STUDENT).id
        (root / "manual_grading.html").write_text(formgrader_page(base, token, f"submissions/{notebook_id}/"))
    (root / "feedback").rename(root / BUTTON)
    _run([sys.executable, "-m", "mnist_grader", "feedback", "--assignment", "week1"], root)
    _run([sys.executable, "-m", "nbgrader", "generate_feedback", "week1", "--force",
          f"--CourseDirectory.feedback_directory={COMMAND}"], root)
    # the other side: a copy of the course whose config lacks the feedback settings
    plain = root.parent / "without_feedback_settings"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(*READABLE))
    config = (plain / "nbgrader_config.py").read_text()
    assert "\nconfigure_feedback(c)\n" in config, "the course's config no longer calls configure_feedback"
    (plain / "nbgrader_config.py").write_text(config.replace("\nconfigure_feedback(c)\n", "\n"))
    _run([sys.executable, "-m", "nbgrader", "generate_feedback", "week1", "--force"], plain)
    shutil.copytree(plain / "feedback", root / NBGRADERS)
    return root


def _page(course: Path, folder: str) -> str:
    return (course / folder / STUDENT / "week1" / "week1.html").read_text()


def _toc(page: str) -> list[str]:
    toc = re.search(r'<div id="toc">(.*?)</div>', page, re.S)
    assert toc, "no table of contents in the feedback page"
    return re.findall(r'<a href="#[^"]+">([^<]+)</a>', toc.group(1))


def _text(page: str) -> str:
    """What a browser shows of a page: scripts, styles and tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<(script|style).*?</\1>", "", page, flags=re.S)))


@pytest.mark.parametrize("made_by", READABLE)
def test_table_of_contents_names_each_test_by_its_task(graded_course, made_by):
    ours = _page(graded_course, made_by)
    assert _toc(ours) == ["1.1 softmax: softmax sums to one", "1.1 softmax: softmax large logits",
                          "1.2 The maximum", "Written response"], _toc(ours)
    assert "Score: 4.0 / 4.0" in ours


def test_nbgraders_own_page_says_test_cell_and_loads_mathjax(graded_course):
    """The other side: without the course's feedback settings nbgrader writes its unreadable page."""
    nbgraders = _page(graded_course, NBGRADERS)
    assert _toc(nbgraders).count("Test cell") == 3
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in nbgraders and "<math" not in nbgraders


@pytest.mark.parametrize("made_by", READABLE)
def test_equations_are_mathml_and_nothing_loads_from_the_network(graded_course, made_by):
    ours = _page(graded_course, made_by)
    assert re.findall(r'<script[^>]+src="(https?:[^"]+)"', ours) == [], "the page loads a script from the network"
    assert len(re.findall(r'<math[^>]*display="block"', ours)) == 1
    assert len(re.findall(r'<math[^>]*display="inline"', ours)) == 2
    assert "MathJax.Hub" not in ours and "x-mathjax-config" not in ours, "MathJax is still configured in the page"
    text = _text(ours)
    assert r"\frac" not in text and "$$" not in text and "mathbb" not in text, "raw LaTeX left in the page"
    assert "$HOME" in text and "a$b" in text, "dollar signs in code were taken for math"


@pytest.mark.parametrize("made_by", READABLE)
def test_feedback_has_no_hidden_test_and_no_rubric(graded_course, made_by):
    secrets = hidden_test_lines(graded_course / "source" / "week1" / "week1.ipynb")
    source = (graded_course / "source" / "week1" / "week1.ipynb").read_text()
    assert leaks(source, secrets) and RUBRIC in source  # both are there to be leaked
    text = _text(_page(graded_course, made_by))
    assert ANSWER in text, "the student's written answer is missing"
    assert not leaks(text, secrets), "a hidden test in the feedback"
    assert RUBRIC not in text and RUBRIC_HEADING.split("**")[1] not in text, "the rubric in the feedback"


def test_manual_grading_page_still_shows_the_rubric(graded_course):
    """The feedback's settings leave Formgrader's Manual Grading page (same config) as it was."""
    text = _text((graded_course / "manual_grading.html").read_text())
    assert RUBRIC in text and ANSWER in text
    assert text.index(RUBRIC) < text.index(ANSWER)


def test_latex_to_mathml_keeps_what_it_cannot_convert():
    assert latex_to_mathml(r"cost $5 and $6") == r"cost $5 and $6"
    assert latex_to_mathml(r"$\notamacro{x}$").startswith(("$", "<math"))  # never raises
    assert "<mfrac>" in latex_to_mathml(r"$$\frac{1}{2}$$")


def test_equations_are_drawn_offline_in_chromium(graded_course, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Chromium is needed at {CHROMIUM}")
        pytest.skip(f"Chromium is needed at {CHROMIUM}")
    page_path = graded_course / OURS / STUDENT / "week1" / "week1.html"
    # Playwright's sync API refuses a thread with a running asyncio loop, which other tests in the
    # same process (Jupyter's clients) may leave behind: look at the page from a thread of its own.
    seen: dict = {}
    worker = threading.Thread(target=_look_at_page, args=(page_path, tmp_path, seen))
    worker.start()
    worker.join(timeout=300)
    if "error" in seen:
        raise seen["error"]
    box, visible, requests = seen["box"], seen["visible"], seen["requests"]
    # A fraction drawn as math is taller than a line of text: numerator above denominator.
    assert box and box["height"] > 25, f"the fraction is not drawn as math: {box}"
    assert r"\frac" not in visible
    assert [u for u in requests if not u.startswith("file:")] == [], f"the page asked the network: {requests}"


def _look_at_page(page_path: Path, tmp_path: Path, seen: dict) -> None:
    """Open the feedback page in Chromium, offline: the fraction's box, the text, the requests."""
    try:
        _look(page_path, tmp_path, seen)
    except BaseException as err:  # handed to the test's thread
        seen["error"] = err


def _look(page_path: Path, tmp_path: Path, seen: dict) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        seen["box"] = page.locator("math[display=block] mfrac").first.bounding_box()
        seen["visible"] = page.locator("body").inner_text()
        seen["requests"] = requests
        page.screenshot(path=str(tmp_path / "feedback.png"), full_page=True)
        browser.close()
