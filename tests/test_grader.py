"""The instructor tooling, end to end with real nbgrader on real notebooks.

Most tests use the tiny fixture course (tests/fixtures/tiny_course: two functions, visible and hidden
tests) because it grades in seconds; one test runs the real mnist_mlp assignment with a reduced
example set (``make check-grader`` runs the full set). Without bubblewrap the grader still works but
cannot wall off the file system: the tests that need the wall are skipped with a loud warning
locally; CI installs bubblewrap (.ci/run) and fails instead.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import pytest

from mnist_grader.grading.sandbox import find_bwrap

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tests" / "fixtures" / "tiny_course"
HAVE_BWRAP = find_bwrap() is not None
NO_BWRAP = "bubblewrap (bwrap) is missing: grading runs WITHOUT its file-system/network wall"

if not HAVE_BWRAP:
    warnings.warn(f"\n\n*** {NO_BWRAP}; install it: apt-get install -y bubblewrap ***\n")


def needs_bwrap():
    if HAVE_BWRAP:
        return
    if os.environ.get("CI"):
        pytest.fail(NO_BWRAP + " (CI must have it: see .ci/run)")
    pytest.skip(NO_BWRAP)


@pytest.fixture(scope="module", autouse=True)
def private_jupyter_dirs(tmp_path_factory):
    """Jupyter, IPython, matplotlib and XDG write into temp folders, never the home folder."""
    base = tmp_path_factory.mktemp("jupyter-home")
    with pytest.MonkeyPatch.context() as mp:
        for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR",
                    "MPLCONFIGDIR", "XDG_CACHE_HOME", "XDG_CONFIG_HOME"):
            mp.setenv(var, str(base / var.lower()))
        mp.setenv("MPLBACKEND", "Agg")
        yield


def grader_cli(course: Path, *args: str, check: bool = True, timeout: int = 600,
               env: dict[str, str] | None = None):
    """Run ``python -m mnist_grader ARGS`` (the real CLI) in a course folder (``env``: extra
    environment variables)."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "mnist_grader", *args, "--course-dir", str(course)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"instructor {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def tiny_course(tmp_path: Path) -> Path:
    """A released copy of the fixture course."""
    course = tmp_path / "tiny_course"
    shutil.copytree(FIXTURE, course)
    grader_cli(course, "release", "--assignment", "tiny")
    return course


def html_text(page: Path) -> str:
    """What a browser shows of a feedback page: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def hidden_test_lines(source_notebook: Path) -> list[str]:
    """The secret lines of the hidden tests (long enough to be worth finding), stripped."""
    lines = []
    for cell in nbformat.read(str(source_notebook), as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 12:
                lines.append(line.strip())
    return lines


def leaks(text: str, secrets: list[str]) -> list[str]:
    """The secrets found in ``text`` in any form: as written, reversed, or split over lines."""
    flat = re.sub(r"\s+", "", text)
    found = []
    for secret in secrets:
        compact = re.sub(r"\s+", "", secret)
        if secret in text or compact in flat or compact[::-1] in flat:
            found.append(secret)
    return found


# --------------------------------------------------------------------------------------------------
# grader QA on the fixture: both sides (right work full marks, each mistake and cheat loses)
# --------------------------------------------------------------------------------------------------
TINY_CHEATS = ["cheat-edit-tests", "cheat-delete-tests", "cheat-hide-tracebacks",
               "cheat-rebind-comparisons", "cheat-always-equal", "cheat-sys-exit", "cheat-os-exit",
               "cheat-fork-bomb", "cheat-skip-tests", "cheat-skip-tests-obfuscated",
               "cheat-displayhook-partial-credit", "cheat-rebind-builtin",
               "cheat-print-hidden-tests"]
SANDBOX_CHEATS = ["cheat-read-secrets", "cheat-write-gradebook"]


@pytest.fixture(scope="module")
def checked_tiny(tmp_path_factory):
    """The fixture course after ``python -m mnist_grader check`` (reduced cheat set: the slow loops
    and the memory bomb run in ``make check-grader``)."""
    course = tiny_course(tmp_path_factory.mktemp("checked"))
    cheats = TINY_CHEATS + (SANDBOX_CHEATS if HAVE_BWRAP else [])
    mistakes = ["mistake-squares-doubles", "mistake-squares-abs", "mistake-mean-sum",
                "mistake-mean-numpy-float"]
    proc = grader_cli(course, "check", "--assignment", "tiny", "-j", "2", "--wall-seconds", "120",
                      "--repeat-reference", "2", "--no-progress", "--only", *mistakes, *cheats,
                      check=False)
    return course, proc


def test_check_passes_on_fixture(checked_tiny):
    course, proc = checked_tiny
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr[-3000:]
    for reference in ("example-reference", "example-reference-regrade-2"):
        row = next(line for line in out.splitlines() if line.startswith(f"{reference} "))
        assert row.split()[1:3] == ["full", "5"] and row.rstrip().endswith("full (5)"), row
    assert "MISSED" not in out and "HARM" not in out and "GAINED" not in out
    for mistake in ("squares-doubles", "squares-abs", "mean-sum", "mean-numpy-float"):
        row = next(line for line in out.splitlines() if line.startswith(f"mistake-{mistake} "))
        assert row.rstrip().endswith("caught"), row
    row = next(line for line in out.splitlines() if line.startswith("cheat-os-exit "))
    assert "failed to grade -> 0, flagged" in row
    # extra cells that reach for IPython cannot gain (the trusted run decides) and are flagged
    for cheat in ("skip-tests", "skip-tests-obfuscated", "print-hidden-tests"):
        row = next(line for line in out.splitlines() if line.startswith(f"cheat-{cheat} "))
        assert "no gain (3 <= 3), flagged" in row, row
    # answers that reach for the machinery are held for review
    for cheat in ("displayhook-partial-credit", "rebind-builtin"):
        row = next(line for line in out.splitlines() if line.startswith(f"cheat-{cheat} "))
        assert "held at 0, flagged for review" in row, row
    # In the gradebook: 0 points, every autograded cell waiting for the instructor's manual grade.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        held = gb.find_submission("tiny", "cheat-displayhook-partial-credit")
        assert held.score == 0 and all(nb.flagged for nb in held.notebooks)
        assert all(g.needs_manual_grade for nb in held.notebooks for g in nb.grades if g.auto_score is not None)
        reference = gb.find_submission("tiny", "example-reference")
        assert reference.score == 5 and not any(nb.flagged for nb in reference.notebooks)  # 5 autograded + 1 manual


def test_sandbox_blocks_reading_and_writing_outside(checked_tiny):
    needs_bwrap()
    course, proc = checked_tiny
    for cheat in SANDBOX_CHEATS:
        nb = nbformat.read(str(course / "autograded" / cheat / "tiny" / "tiny.ipynb"), as_version=4)
        text = "".join(o.get("text", "") for o in nb.cells[0].get("outputs", []))
        assert "CHEAT-SUCCEEDED" not in text, text
        assert text.strip(), "the cheat cell ran and reported"
    assert "files outside my own folder that I could read: 0" in "".join(
        o.get("text", "") for o in nbformat.read(
            str(course / "autograded" / "cheat-read-secrets" / "tiny" / "tiny.ipynb"),
            as_version=4).cells[0].outputs)
    assert not (course / "CHEATED.txt").exists()


def test_check_fails_when_a_mistake_is_missed(tmp_path):
    """The other side: a mistake library that expects a cell to lose points it does not lose."""
    course = tiny_course(tmp_path)
    library = (course / "tiny_mistakes.py").read_text()
    # squares-abs is only wrong for negative numbers: the visible test cannot catch it
    library = library.replace('must_lose=["test_squares_hidden"], why="wrong sign',
                              'must_lose=["test_squares_visible"], why="wrong sign')
    (course / "tiny_mistakes.py").write_text(library)
    proc = grader_cli(course, "check", "--assignment", "tiny", "-j", "2", "--repeat-reference",
                      "1", "--no-progress", "--only", "mistake-squares-abs", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    assert "MISSED test_squares_visible" in proc.stdout


# --------------------------------------------------------------------------------------------------
# feedback and export
# --------------------------------------------------------------------------------------------------
def test_feedback_has_no_hidden_tests_but_keeps_the_messages(checked_tiny):
    course, _ = checked_tiny
    grader_cli(course, "feedback", "--assignment", "tiny")
    secrets = hidden_test_lines(course / "source" / "tiny" / "tiny.ipynb")
    assert len(secrets) >= 5
    pages = sorted((course / "feedback").glob("*/tiny/tiny.html"))
    assert len(pages) >= 10
    for page in pages:
        text = html_text(page)
        assert not leaks(text, secrets + ["HIDDEN_SENTINEL"]), page
    wrong_sign = html_text(course / "feedback" / "mistake-squares-abs" / "tiny" / "tiny.html")
    # the trusted run's message for the failing hidden check, without its source
    assert "a hidden check of this task failed: check negative numbers" in wrong_sign
    printed = (course / "autograded" / "cheat-print-hidden-tests" / "tiny" / "tiny.ipynb").read_text()
    assert "tsil a nruter tsum serauqs" in printed  # it printed the visible tests, reversed...
    assert not leaks(printed, secrets)  # ...and no hidden test: the kernel never had one

    # the other side: plain nbgrader runs hidden tests in the student's kernel, so that cheat
    # prints them, reversed, into what feedback shows
    plain = tmp_path_factory_course(course)
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--force",
                    "--student", "cheat-print-hidden-tests"], cwd=plain, check=True,
                   capture_output=True, env=dict(os.environ, PATH=os.path.dirname(sys.executable)
                                                 + os.pathsep + os.environ["PATH"]))
    leaked = (plain / "autograded" / "cheat-print-hidden-tests" / "tiny" / "tiny.ipynb").read_text()
    assert leaks(leaked, secrets), "plain nbgrader should leak the hidden tests to that cheat"


def tmp_path_factory_course(course: Path) -> Path:
    """A copy of a graded course beside it, for plain nbgrader runs that must not touch it."""
    copy = course.parent / f"{course.name}-plain"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(course, copy, ignore=shutil.ignore_patterns("autograded", "feedback"))
    config = copy / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(course), str(copy)))
    return copy


def test_export_csv(checked_tiny, tmp_path):
    course, _ = checked_tiny
    out = tmp_path / "grades.csv"
    grader_cli(course, "export", "--assignment", "tiny", "--output", str(out))
    rows = {line.split(",")[3]: line.split(",") for line in out.read_text().splitlines()[1:]}
    assert float(rows["example-reference"][9]) == 5.0
    assert float(rows["example-blank"][9]) == 0.0
    assert float(rows["mistake-squares-abs"][9]) == 3.0


# --------------------------------------------------------------------------------------------------
# the gradebook survives the grading command being killed
# --------------------------------------------------------------------------------------------------
def gradebook_state(db_path: Path) -> tuple[str, dict[str, int], int]:
    """(integrity, grade rows per submitted notebook, grade cells per notebook)."""
    with sqlite3.connect(db_path) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        per_notebook = dict(db.execute(
            "SELECT student.id, COUNT(grade.id) FROM submitted_notebook "
            "JOIN submitted_assignment ON submitted_notebook.assignment_id = submitted_assignment.id "
            "JOIN student ON submitted_assignment.student_id = student.id "
            "LEFT JOIN grade ON grade.notebook_id = submitted_notebook.id "
            "GROUP BY submitted_notebook.id").fetchall())
        cells = db.execute("SELECT COUNT(*) FROM grade_cells").fetchone()[0]
    return integrity, per_notebook, cells


def killed_run_uids(scratch_parent: Path) -> set[int]:
    """The sandbox uids of the kernels a killed grading run had started (from its scratch folder)."""
    import json

    return {json.loads(p.read_text())["uid"]
            for p in scratch_parent.glob("grading-*/*/kernel-settings.json")}


def test_killed_grading_leaves_a_consistent_gradebook(tmp_path):
    course = tiny_course(tmp_path)
    students = ["example-reference", "example-blank", "mistake-squares-doubles",
                "mistake-squares-abs", "mistake-mean-sum", "mistake-mean-numpy-float"]
    grader_cli(course, "examples", "--assignment", "tiny", "--only", *students)
    scratch = tmp_path / "scratch"  # where the runs put their scratch folders (TMPDIR)
    scratch.mkdir()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               TMPDIR=str(scratch))
    proc = subprocess.Popen([sys.executable, "-m", "mnist_grader", "autograde", "--assignment", "tiny",
                             "-j", "2", "--no-progress", "--course-dir", str(course)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    db_path = course / "gradebook.db"
    deadline = time.monotonic() + 240
    merged = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            merged = len(gradebook_state(db_path)[1])
        except sqlite3.OperationalError:  # busy while the parent writes
            merged = 0
        if merged >= 1:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "grading finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)  # the harshest interruption: no cleanup code runs
    proc.wait()

    integrity, per_notebook, cells = gradebook_state(db_path)
    assert integrity == "ok"
    assert 1 <= len(per_notebook) < len(students)
    assert all(count == cells for count in per_notebook.values()), per_notebook  # none half-written
    time.sleep(1)
    from mnist_grader.check import sandbox_leftovers
    assert sandbox_leftovers(killed_run_uids(scratch)) == []  # they died with the grading command
    assert len(list(scratch.glob("grading-*"))) == 1  # the killed run's scratch folder is left

    # re-run (with one fresh nbgrader process per submission: the other way of running it)
    rerun = grader_cli(course, "autograde", "--assignment", "tiny", "-j", "2", "--no-progress",
                       "--no-fork-server", env={"TMPDIR": str(scratch)})
    assert "6/6 submissions graded" in rerun.stdout
    assert "scratch folder of a grading run that was killed" in rerun.stderr
    assert list(scratch.iterdir()) == []  # the dead run's folder removed, the rerun's own too
    integrity, per_notebook, cells = gradebook_state(db_path)
    assert integrity == "ok" and len(per_notebook) == len(students)
    assert all(count == cells for count in per_notebook.values())
    graded = sorted(p.parent.name for p in (course / "autograded").glob("*/tiny"))
    assert graded == sorted(students)
    assert not list((course / "autograded").glob("*/.*"))  # no staging folder left


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader 0.9.6 + SQLAlchemy 2
def test_merge_is_one_transaction(tmp_path, monkeypatch):
    """A failure in the middle of a merge leaves the real gradebook exactly as it was."""
    from nbgrader.api import Gradebook

    from mnist_grader.grading import merge
    from mnist_grader.course import load_course

    course = tiny_course(tmp_path)
    grader_cli(course, "examples", "--assignment", "tiny", "--only", "example-reference")
    grader_cli(course, "autograde", "--assignment", "tiny", "-j", "1", "--no-progress")
    graded = tmp_path / "graded.db"
    shutil.copy(course / "gradebook.db", graded)
    real = tmp_path / "real.db"
    shutil.copy(course / "gradebook.db", real)
    with Gradebook(f"sqlite:///{real}") as gb:
        gb.remove_student("example-reference")
    before = real.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Gradebook, "find_comment", broken)
    with pytest.raises(RuntimeError):
        merge.merge_submission(f"sqlite:///{real}", f"sqlite:///{graded}", "tiny",
                               "example-reference")
    with Gradebook(f"sqlite:///{real}") as gb:
        assert [s.id for s in gb.students] == []  # not even the student row was kept
    monkeypatch.undo()
    score = merge.merge_submission(f"sqlite:///{real}", f"sqlite:///{graded}", "tiny",
                                   "example-reference")
    assert score == 5.0
    assert load_course(course).course_id == "tiny_course"
    assert before != real.read_bytes()


# --------------------------------------------------------------------------------------------------
# fast unit tests
# --------------------------------------------------------------------------------------------------
def test_scan_flags_machinery_in_extra_cells_but_not_honest_code(tmp_path):
    from mnist_grader.grading.scan import machinery_flags

    answer = {"nbgrader": {"grade_id": "softmax", "solution": True, "grade": False, "locked": False}}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.imshow([[0, 1]])"),
        nbformat.v4.new_code_cell("get_ipython().showtraceback = lambda *a: None"),
        nbformat.v4.new_code_cell("import sys\nsys.settrace(None)"),
        nbformat.v4.new_code_cell("import numpy as np\nnp.allclose = lambda *a, **k: True",
                                  metadata=answer),
    ])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    found = machinery_flags(path)
    assert any(f.startswith("cell 1,") and "get_ipython" in f for f in found), found
    assert any(f.startswith("cell 2,") and "imports sys" in f for f in found), found
    assert not [f for f in found if f.startswith(("cell 0,", "cell 3,"))], found  # honest; answer


def test_bad_input_gets_a_clear_error(tmp_path):
    proc = grader_cli(tmp_path, "autograde", check=False)
    assert proc.returncode == 2 and "no nbgrader_config.py" in proc.stderr
    course = tmp_path / "unreleased"
    shutil.copytree(FIXTURE, course)
    proc = grader_cli(course, "autograde", "--assignment", "tiny", check=False)
    assert proc.returncode == 2 and "no submissions of 'tiny'" in proc.stderr
    proc = grader_cli(course, "examples", "--assignment", "nope", check=False)
    assert proc.returncode == 2 and "no notebooks in" in proc.stderr or "no mistake library" in \
        proc.stderr


# --------------------------------------------------------------------------------------------------
# the real assignment, reduced (the full set: make check-grader)
# --------------------------------------------------------------------------------------------------
def test_mnist_mlp_reference_full_mistake_caught(tmp_path, real_mnist_root):
    if not (REPO / "source" / "mnist_mlp").is_dir():
        pytest.skip("source/mnist_mlp is not there yet")
    course = tmp_path / "course"
    course.mkdir()
    for name in ("source", "release"):
        shutil.copytree(REPO / name, course / name)
    shutil.copy(REPO / "nbgrader_config.py", course)
    grader_cli(course, "release")
    proc = grader_cli(course, "check", "-j", "2", "--repeat-reference", "1", "--no-progress",
                      "--only", "mistake-softmax-overflow", "mistake-no-batchnorm", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "example-reference" in proc.stdout and "BELOW FULL" not in proc.stdout
    assert proc.stdout.count("caught") == 2


def test_bench_grading_smoke():
    """The grading benchmark runs (tiny course, 4 submissions) and prints its figures."""
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_grading.py"), "--smoke"],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
                                   + os.environ["PATH"]))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    for figure in ("plain nbgrader autograde (sequential)", "speedup", "s/submission",
                   "peak memory of one worker", "what dominates"):
        assert figure in proc.stdout, proc.stdout
