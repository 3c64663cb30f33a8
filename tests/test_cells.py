"""nbgrader's cell kinds, as the grader, the feedback and the trusted run see them."""
from __future__ import annotations

import nbformat

from mnist_grader.cells import grade_id, is_answer_cell, is_test_cell


def cell(kind: str = "code", **nbgrader):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    metadata = {"nbgrader": dict(nbgrader)} if nbgrader else {}
    return make("x = 1", metadata=metadata)


def test_tests_and_answers_are_told_apart_as_nbgrader_does():
    test = cell(grade=True, solution=False, locked=True, grade_id="test_x", points=1)
    answer = cell(grade=False, solution=True, locked=False, grade_id="answer_x")
    autograded_answer = cell(grade=True, solution=True, grade_id="graded_answer", points=1)
    written = cell("markdown", grade=True, solution=True, grade_id="written", points=1)
    locked = cell(grade=False, solution=False, locked=True, grade_id="setup")
    plain = cell()
    assert [is_test_cell(c) for c in (test, answer, autograded_answer, written, locked, plain)] == \
        [True, False, False, False, False, False]
    assert [is_answer_cell(c) for c in (test, answer, autograded_answer, written, locked, plain)] == \
        [False, True, False, False, False, False]
    assert [grade_id(c) for c in (test, locked, plain)] == ["test_x", "setup", None]
