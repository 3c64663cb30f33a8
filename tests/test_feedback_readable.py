"""Feedback a student can read: equations drawn without a CDN, test cells named by their task.

A small course is generated here (a notebook with display and inline equations, two tasks, one of
them with two test cells) and graded by real nbgrader; `python -m mnist_grader feedback` writes the
page, nbgrader's own `generate_feedback` writes the page it would have written, for comparison.
The page is then opened in Chromium, offline, to see the equations drawn as math.
"""
from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from mnist_grader.jupyter_env import private_dirs
from mnist_grader.readable_feedback import latex_to_mathml

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
STUDENT = "ada"
DISPLAY = r"p_k = \frac{e^{z_k}}{\sum_j e^{z_j}} \qquad (1)"


def _cell(kind: str, source: str, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    if nbgrader:
        cell.metadata.nbgrader = {"schema_version": 3, "locked": False, "solution": False,
                                  "grade": False, "points": 0, **nbgrader}
    return cell


def _source_notebook() -> nbformat.NotebookNode:
    cells = [
        _cell("md", f"## Part 1: softmax\n\n### 1.1 `softmax` (2 points)\n\nFor logits $z \\in \\mathbb{{R}}^{{3}}$:\n\n"
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
        _cell("code", "assert biggest([1, 5, 2]) == 5", grade=True, grade_id="test_biggest", points=1,
              locked=True),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _run(cmd: list[str], cwd: Path) -> None:
    """Run ``cmd`` in ``cwd`` with Jupyter's folders private to the course (below cwd/jupyter)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               **private_dirs(cwd / "jupyter"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory) -> Path:
    """A course with one autograded submission (the solutions, as a student would hand them in)."""
    root = tmp_path_factory.mktemp("feedback_course")
    (root / "nbgrader_config.py").write_text(
        'c = get_config()\nc.CourseDirectory.course_id = "readable"\n'
        f'c.CourseDirectory.root = {str(root)!r}\n')
    (root / "source" / "week1").mkdir(parents=True)
    nbformat.write(_source_notebook(), str(root / "source" / "week1" / "week1.ipynb"))
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", "week1", "--force"], root)
    submission = _source_notebook()  # the solutions, markers gone, like a student's answers
    for cell in submission.cells:
        cell.source = "\n".join(l for l in cell.source.splitlines() if "### BEGIN" not in l and "### END" not in l)
    released = nbformat.read(str(root / "release" / "week1" / "week1.ipynb"), as_version=4)
    for cell, answered in zip(released.cells, submission.cells):
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = answered.source
    (root / "submitted" / STUDENT / "week1").mkdir(parents=True)
    nbformat.write(released, str(root / "submitted" / STUDENT / "week1" / "week1.ipynb"))
    _run([sys.executable, "-m", "nbgrader", "autograde", "week1", "--force"], root)
    _run([sys.executable, "-m", "mnist_grader", "feedback", "--assignment", "week1"], root)
    _run([sys.executable, "-m", "nbgrader", "generate_feedback", "week1", "--force",
          "--CourseDirectory.feedback_directory=nbgrader_feedback"], root)
    return root


def _toc(page: str) -> list[str]:
    toc = re.search(r'<div id="toc">(.*?)</div>', page, re.S)
    assert toc, "no table of contents in the feedback page"
    return re.findall(r'<a href="#[^"]+">([^<]+)</a>', toc.group(1))


def test_table_of_contents_names_each_test_by_its_task(graded_course):
    ours = (graded_course / "feedback" / STUDENT / "week1" / "week1.html").read_text()
    nbgraders = (graded_course / "nbgrader_feedback" / STUDENT / "week1" / "week1.html").read_text()
    assert _toc(nbgraders).count("Test cell") == 3, "nbgrader's own page should say 'Test cell' (the other side)"
    assert _toc(ours) == ["1.1 softmax: softmax sums to one", "1.1 softmax: softmax large logits",
                          "1.2 The maximum"], _toc(ours)
    assert "Score: 3.0 / 3.0" in ours


def test_equations_are_mathml_and_nothing_loads_from_the_network(graded_course):
    ours = (graded_course / "feedback" / STUDENT / "week1" / "week1.html").read_text()
    nbgraders = (graded_course / "nbgrader_feedback" / STUDENT / "week1" / "week1.html").read_text()
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in nbgraders and "<math" not in nbgraders
    assert re.findall(r'<script[^>]+src="(https?:[^"]+)"', ours) == [], "the page loads a script from the network"
    assert len(re.findall(r'<math[^>]*display="block"', ours)) == 1
    assert len(re.findall(r'<math[^>]*display="inline"', ours)) == 2
    assert "MathJax.Hub" not in ours and "x-mathjax-config" not in ours, "MathJax is still configured in the page"
    text = html.unescape(re.sub(r"<[^>]+>", "", re.sub(r"<(script|style).*?</\1>", "", ours, flags=re.S)))
    assert r"\frac" not in text and "$$" not in text and "mathbb" not in text, "raw LaTeX left in the page"
    assert "$HOME" in text and "a$b" in text, "dollar signs in code were taken for math"


def test_latex_to_mathml_keeps_what_it_cannot_convert():
    assert latex_to_mathml(r"cost $5 and $6") == r"cost $5 and $6"
    assert latex_to_mathml(r"$\notamacro{x}$").startswith(("$", "<math"))  # never raises
    assert "<mfrac>" in latex_to_mathml(r"$$\frac{1}{2}$$")


def test_equations_are_drawn_offline_in_chromium(graded_course, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"Chromium is needed at {CHROMIUM}")
        pytest.skip(f"Chromium is needed at {CHROMIUM}")
    page_path = graded_course / "feedback" / STUDENT / "week1" / "week1.html"
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
