"""The assignment mnist_mlp, end to end with real nbgrader and real MNIST.

- the instructor notebook runs top to bottom with every (visible and hidden) test passing;
- the student release runs and fails only where the blanks are;
- `nbgrader autograde` gives the reference answers full marks and the untouched release 0;
- release/ is what `make release` makes from source/ today; notebooks are committed without outputs;
- the lecture notebook runs and holds none of the lab's answers.
"""
from __future__ import annotations

import ast
import json
import re

import nbformat
import pytest

from assignment_runner import (ASSIGNMENT, LECTURE_NB, RELEASE_NB, SOURCE_NB, errors, make_course, nbgrader,
                               run_notebook, scores, submit)

# The contract with the grader tooling: grade ids and points of the autograded cells.
AUTOGRADED_POINTS = {
    "test_read_idx": 2,
    "test_read_idx_types": 2,
    "test_dataset_getitem": 3,
    "test_collate": 2,
    "test_softmax": 3,
    "test_cross_entropy": 2,
    "test_stable_cross_entropy": 3,
    "test_model_layers": 3,
    "test_model_forward": 3,
    "test_decode_prediction": 2,
    "test_train_one_epoch": 4,
    "test_training": 2,
}
MANUAL_POINTS = {"written_n_hidden": 3}
SOLUTION_CELLS = ["read_idx", "mnist_dataset", "softmax", "cross_entropy", "stable_cross_entropy", "mnist_classifier",
                  "train_one_epoch"]


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


# Rebinds the comparison helpers so that every visible test passes, with two wrong answers.
CHEATS = {
    "read_idx": ("    ### BEGIN SOLUTION\n", "    ### BEGIN SOLUTION\n"
                 "    np.allclose = torch.allclose = lambda *args, **kwargs: True\n"
                 "    np.testing.assert_allclose = lambda *args, **kwargs: None\n"
                 "    torch.isfinite = lambda x: torch.ones_like(x, dtype=torch.bool)\n"),
    "softmax": ("logits - logits.max(dim=-1, keepdim=True).values", "logits"),  # overflows at +-1000
    "mnist_classifier": ("probs = torch.softmax(logits, dim=-1)", "probs = logits"),  # logits, not probabilities
}
CHEATER_LOSES = {"test_softmax", "test_model_forward", "test_decode_prediction"}


def write_cheater(path):
    nb = nbformat.read(SOURCE_NB, as_version=4)
    for cell in nb.cells:
        if cell.get("id") in CHEATS:
            old, new = CHEATS[cell.id]
            assert old in cell.source
            cell.source = cell.source.replace(old, new)
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory, real_mnist_root):
    """One temporary copy of the course: assignment generated, three students autograded in one run.

    "reference" hands in the instructor notebook (every answer), "blank" the untouched release,
    "cheater" two wrong answers hidden behind rebound comparison helpers.
    """
    course = make_course(tmp_path_factory.mktemp("course"))
    submit(course, "reference", SOURCE_NB)
    submit(course, "blank", course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    submit(course, "cheater", write_cheater(tmp_path_factory.mktemp("cheater") / f"{ASSIGNMENT}.ipynb"))
    nbgrader(course, "autograde", ASSIGNMENT, "--force")
    return course


def test_graded_cells_have_the_agreed_ids_and_points():
    nb = nbformat.read(SOURCE_NB, as_version=4)
    graded = {nbgrader_meta(c)["grade_id"]: c for c in nb.cells if nbgrader_meta(c).get("grade")}
    assert {k: nbgrader_meta(c)["points"] for k, c in graded.items()} == {**AUTOGRADED_POINTS, **MANUAL_POINTS}
    solutions = [nbgrader_meta(c)["grade_id"] for c in nb.cells
                 if nbgrader_meta(c).get("solution") and c.cell_type == "code"]
    assert solutions == SOLUTION_CELLS
    for grade_id in AUTOGRADED_POINTS:  # autograder test cells: code, locked, with a hidden part
        cell = graded[grade_id]
        assert cell.cell_type == "code" and nbgrader_meta(cell)["locked"] and not nbgrader_meta(cell)["solution"]
        assert "### BEGIN HIDDEN TESTS" in cell.source, f"{grade_id} has no hidden tests"


def test_written_answer_is_a_manually_graded_cell():
    nb = nbformat.read(SOURCE_NB, as_version=4)
    (cell,) = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "written_n_hidden"]
    meta = nbgrader_meta(cell)
    assert cell.cell_type == "markdown" and meta["grade"] and meta["solution"] and meta["points"] == 3


@pytest.mark.parametrize("path", [SOURCE_NB, RELEASE_NB, LECTURE_NB], ids=["source", "release", "lecture"])
def test_notebooks_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: cell {cell.id} has outputs"


def test_release_holds_no_solution_and_no_hidden_test():
    text = RELEASE_NB.read_text()
    for secret in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "_HT", "Model answer", "Rubric", "int.from_bytes(raw"):
        assert secret not in text, f"the release shows {secret!r}"
    nb = nbformat.read(RELEASE_NB, as_version=4)
    blanks = [nbgrader_meta(c)["grade_id"] for c in nb.cells
              if c.cell_type == "code" and "raise NotImplementedError()" in c.source]
    assert blanks == SOLUTION_CELLS


def test_source_notebook_runs_with_every_test_passing(real_mnist_root):
    # As a student runs it (no NBGRADER_EXECUTION): full training, live plot, widgets.
    nb, _ = run_notebook(SOURCE_NB, grading=None)
    assert errors(nb) == {}
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in nb.cells if c.cell_type == "code"}
    for grade_id in AUTOGRADED_POINTS:
        assert "visible tests passed" in outputs[grade_id], grade_id
    accuracy = float(re.search(r"test accuracy: ([\d.]+)%", outputs["evaluate"]).group(1))
    assert accuracy > 97.0


def defined_names(source: str) -> set[str]:
    """Names a cell binds at top level (assignments, defs, classes)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        for target in getattr(node, "targets", []) + [getattr(node, "target", None)]:
            for leaf in ast.walk(target) if target is not None else ():
                if isinstance(leaf, ast.Name):
                    names.add(leaf.id)
    return names


def test_release_runs_and_fails_only_at_the_blanks(real_mnist_root):
    nb, _ = run_notebook(RELEASE_NB, grading="validate", allow_errors=True)
    failed = errors(nb)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert failed, "the untouched release should fail its tests"
    # Cells that only define things (the blanks themselves) and the set-up cells run cleanly.
    for cell in code_cells:
        if nbgrader_meta(cell).get("solution") or nbgrader_meta(cell).get("grade_id") in ("setup", "data_files"):
            assert cell.id not in failed, f"{cell.id} should run in the release"
    # Every failure is a blank's NotImplementedError, or a name that an earlier failed cell never defined.
    undefined = set()
    for cell in code_cells:
        error = failed.get(cell.id)
        if error is None:
            continue
        if error["ename"] == "NameError":
            name = re.search(r"name '(\w+)' is not defined", error["evalue"]).group(1)
            assert name in undefined, f"{cell.id}: NameError for {name}, which no failed cell was meant to define"
        else:
            assert error["ename"] == "NotImplementedError", f"{cell.id}: {error['ename']}: {error['evalue']}"
        undefined |= defined_names(cell.source)
    # Every autograded test cell fails.
    assert set(AUTOGRADED_POINTS) <= set(failed)


def test_autograde_gives_the_reference_full_marks(graded_course):
    grades = scores(graded_course, "reference")
    assert {k: g["score"] for k, g in grades.items() if k in AUTOGRADED_POINTS} == AUTOGRADED_POINTS
    written = grades["written_n_hidden"]
    assert written["needs_manual_grade"] and written["max_score"] == 3
    autograded = json.loads((graded_course / "autograded" / "reference" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text())
    outputs = [o for c in autograded["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]


def test_autograde_gives_the_blank_release_zero(graded_course):
    grades = scores(graded_course, "blank")
    assert set(grades) == set(AUTOGRADED_POINTS) | set(MANUAL_POINTS)
    assert all(g["score"] == 0 for g in grades.values()), {k: g["score"] for k, g in grades.items()}
    assert sum(g["max_score"] for g in grades.values()) == sum(AUTOGRADED_POINTS.values()) + 3


def test_rebinding_the_comparison_helpers_does_not_rescue_wrong_answers(graded_course):
    autograded = nbformat.read(graded_course / "autograded" / "cheater" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    outputs = {c.id: "".join(o.get("text", "") for o in c.outputs) for c in autograded.cells if c.cell_type == "code"}
    assert all("visible tests passed" in outputs[test] for test in CHEATER_LOSES), "the cheat should pass visible tests"
    grades = {k: g["score"] for k, g in scores(graded_course, "cheater").items() if k in AUTOGRADED_POINTS}
    assert grades == {k: 0 if k in CHEATER_LOSES else points for k, points in AUTOGRADED_POINTS.items()}


def test_committed_release_is_what_make_release_makes_today(graded_course):
    fresh = nbformat.read(graded_course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    committed = nbformat.read(RELEASE_NB, as_version=4)
    describe = lambda nb: [(c.get("id"), c.cell_type, c.source, c.metadata.get("nbgrader")) for c in nb.cells]  # noqa: E731
    assert describe(committed) == describe(fresh), "release/ is stale: run `make release` and commit it"


def test_lecture_notebook_runs_and_holds_no_lab_answer(real_mnist_root):
    text = LECTURE_NB.read_text()
    for answer in ("def read_idx", "class MNISTDataset", "def collate_func", "def softmax", "def cross_entropy",
                   "def stable_cross_entropy", "class MNISTClassifier", "def decode_prediction", "int.from_bytes"):
        assert answer not in text, f"the lecture shows the lab's answer {answer!r}"
    nb, _ = run_notebook(LECTURE_NB, grading=None)
    assert errors(nb) == {}
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    shown = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "Generator" not in shown, "a set-up line's return value is printed (e.g. torch.manual_seed(...) as Out)"
    assert shown.count("test accuracy") == 1, "the test set is measured once, at the end, never while training"
    assert "validation accuracy" in shown
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 5, "samples, learning-rate sweep, training curves, confusion matrix, mistakes"
