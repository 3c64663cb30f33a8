"""Flags for a student's extra cells that reach for the grading machinery."""
from __future__ import annotations

import nbformat


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
