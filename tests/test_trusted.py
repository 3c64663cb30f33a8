"""The trusted run: the policy (whitelist) on answers, and the sandboxed runner on the real lab.

Both sides each time: honest answers in many styles keep every check passing with no hold; code
that reaches for the machinery is held with a reason; an alias taken before a task's test cannot
call a ready-made function the test switches off; a loop that never ends costs only its own test.
The runner tests use the real mnist_mlp source notebook and the real MNIST files.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import os
import sys
from pathlib import Path

import nbformat
import pytest

from mnist_grader.course import load_course
from mnist_grader.examples import REFERENCE, example_set
from mnist_grader.library import load_library
from mnist_grader.grading.sandbox import Limits, find_bwrap
from mnist_grader.trusted import policy
from mnist_grader.trusted.hidden import hidden_test_delimiters
from mnist_grader.trusted.job import build_notebook_job
from mnist_grader.trusted.job import lab_imports
from mnist_grader.trusted.launch import TrustedRunSettings, TrustedServer, run_trusted

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "source" / "mnist_mlp" / "mnist_mlp.ipynb"
SKIP = frozenset({"browse_digits", "explore_hidden_size", "evaluate_plots", "sanity_initial_loss",
                  "sanity_gradients", "sanity_overfit", "first_layer"})


@pytest.fixture(scope="module")
def course():
    return load_course(REPO)


@pytest.fixture(scope="module")
def examples(course):
    return example_set(course, "mnist_mlp", load_library(course.root, "mnist_mlp"))


def lab_sources() -> list[str]:
    nb = nbformat.read(str(SOURCE), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code"
            and c.metadata.get("nbgrader", {}).get("locked")
            and not c.metadata.get("nbgrader", {}).get("grade")]


def holds_of(source: str, cell: str = "answer") -> list[str]:
    return policy.review({cell: source}, lab_sources(), ["_HT = 1\n_x = 2"])[cell].holds


# --------------------------------------------------------------------------------------------------
# the policy, fast
# --------------------------------------------------------------------------------------------------
def test_every_alternative_answer_passes_the_policy(examples):
    library = load_library(REPO, "mnist_mlp")
    assert len(library.alternatives) >= 10
    for alternative in library.alternatives:
        for cell, answer in alternative.answers.items():
            review = policy.review({cell: answer}, lab_sources())[cell]
            assert review.holds == [], (alternative.name, review.holds)
            assert review.dropped == [], (alternative.name, review.dropped)


@pytest.mark.parametrize("code, reason", [
    ("import sys\ndef f():\n    return sys._getframe()", "imports sys"),
    ("def f():\n    return __import__('sys')", "uses __import__"),
    ("def f(x):\n    return x.__class__", "uses the attribute __class__"),
    ("def f(g):\n    return g.__globals__", "uses the attribute __globals__"),
    ("def f():\n    return globals()['_HT']", "uses the builtin globals()"),
    ("def f():\n    return _HT.close", "uses _HT, a private name it did not define"),
    ("def f(gen):\n    return gen.gi_frame.f_back", "interpreter internals"),
    ("import numpy as np\ndef f():\n    np.allclose = lambda *a: True", "assigns to the attribute"),
    ("import torch\ndef f():\n    T = torch.Tensor\n    T.tolist = list", "assigns to the attribute"),
    ("zip = lambda *a: iter(())", "rebinds the builtin zip"),
    ("_HT = None", "a name the tests use"),
    ("np = None", "rebinds np, which the lab's own cells define"),
    ("import gzip\ndef f():\n    return gzip.os.system('ls')", "gzip.os"),
    ("import torch\ndef f(p):\n    return torch.load(p)", "torch.load"),
    ("def f(p):\n    return open(p, 'w')", "writes"),
    ("def f(p, m):\n    return open(p, m)", "not a literal"),
    ("def f(x):\n    return '{0.__globals__}'.format(x)", "format string"),
    ("class T:\n    def __torch_function__(self, *a):\n        return 1", "defines __torch_function__"),
    ("class T:\n    def __eq__(self, other):\n        return True", "defines __eq__"),
    ("class T:\n    __eq__ = lambda self, other: True", "binds __eq__"),
    ("import types\ncopy = types.FunctionType", "imports types"),
    ("from helpers.data import load_mnist", "imports helpers.data"),
    ("def f():\n    global np\n    np = None", "global"),
    ("def f():\n    get_ipython().run_cell('x')", "IPython's machinery"),
    ("import os\ndef f():\n    return os.system('ls')", "only os.path is allowed"),
])
def test_machinery_is_held_with_a_reason(code, reason):
    holds = holds_of(code)
    assert any(reason in h for h in holds), holds


def test_honest_helpers_and_top_level_statements():
    review = policy.review({"a": "import os\nimport math\n\nSCALE = 1 / 255\n_CACHE = {}\n"
                                 "print('loaded')\n\ndef g(path):\n    return os.path.getsize(path)"},
                           lab_sources())["a"]
    assert review.holds == []
    assert review.dropped == ["line 6: an expression (e.g. a call)"]  # print is not loaded


# --------------------------------------------------------------------------------------------------
# the runner, sandboxed, on the real lab
# --------------------------------------------------------------------------------------------------
def trusted(course, tmp_path: Path, notebooks, cell_timeout: float = 60.0, server=None):
    """(job, report) of one trusted run: a fresh process, or a child of ``server``."""
    path = tmp_path / "mnist_mlp.ipynb"
    nbformat.write(notebooks["mnist_mlp"], str(path))
    job = build_notebook_job(SOURCE, path, hidden_test_delimiters(course.config), SKIP)
    uid = None if os.getuid() else 65000 + os.getpid() % 1000
    if server is not None:
        return job, server.run([job], uid)
    settings = dataclasses.replace(trusted_settings(course), uid=uid, cell_timeout=cell_timeout)
    return job, run_trusted([job], settings)


def trusted_settings(course) -> TrustedRunSettings:
    from mnist_grader.grading.scratch import grader_readonly_paths, kernel_readonly_paths

    readonly = grader_readonly_paths(course, kernel_readonly_paths(course, []))
    return TrustedRunSettings(python=sys.executable, readonly=readonly, bwrap=find_bwrap(),
                              uid=None, limits=Limits(wall_seconds=300), cell_timeout=60.0)


def with_answers(examples, answers: dict[str, str]):
    notebooks = copy.deepcopy(examples[REFERENCE])
    for cell in notebooks["mnist_mlp"].cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return notebooks


def test_alternative_answers_pass_every_hidden_test(course, examples, tmp_path, real_mnist_root):
    """The alternatives, grouped so that each group changes every task at most once."""
    library = load_library(REPO, "mnist_mlp")
    groups: list[dict[str, str]] = []
    for alternative in library.alternatives:
        for group in groups:
            if not set(group) & set(alternative.answers):
                group.update(alternative.answers)
                break
        else:
            groups.append(dict(alternative.answers))
    assert sum(len(g) for g in groups) == sum(len(a.answers) for a in library.alternatives)
    for number, answers in enumerate(groups):
        (tmp_path / str(number)).mkdir()
        job, report = trusted(course, tmp_path / str(number), with_answers(examples, answers))
        assert job.holds == [] and report.finished, (job.holds, report.reason, report.log_tail)
        failed = {cell: v.message for (_, cell), v in report.tests.items() if not v.ok}
        assert failed == {}, (sorted(answers), failed)
        assert len(report.tests) == 12


def test_the_blank_fails_every_test_and_an_alias_cannot_escape_a_switch(course, examples,
                                                                        tmp_path, real_mnist_root):
    aliased = with_answers(examples, {
        "softmax": "from torch import softmax as _sm\n\n\ndef softmax(logits):\n"
                   "    return _sm(logits, dim=-1)\n",
        # the other side of the same run: an endless loop loses its own test, nothing else
        "cross_entropy": "def cross_entropy(probs, labels):\n    while True:\n        pass\n",
    })
    job, report = trusted(course, tmp_path, aliased, cell_timeout=5)
    assert job.holds == [] and report.finished, report.reason
    softmax = report.verdict("mnist_mlp", "test_softmax")
    assert not softmax.ok and softmax.failed_in == "hidden"
    assert "torch.softmax was called: it is off limits" in softmax.message
    loop = report.verdict("mnist_mlp", "test_cross_entropy")
    assert not loop.ok and "longer than the grader's limit" in loop.message
    passed = sorted(cell for (_, cell), v in report.tests.items() if v.ok)
    assert passed == ["test_collate", "test_dataset_getitem", "test_decode_prediction",
                      "test_model_forward", "test_model_layers", "test_read_idx", "test_read_idx_types",
                      "test_stable_cross_entropy", "test_train_one_epoch", "test_training"]

    (tmp_path / "blank").mkdir()
    _, blank = trusted(course, tmp_path / "blank", examples["example-blank"])
    assert blank.finished and len(blank.tests) == 12
    assert not any(v.ok for v in blank.tests.values())

    # a loop that swallows the interruption ends the run after a grace period, with a reason
    stubborn = with_answers(examples, {
        "cross_entropy": "def cross_entropy(probs, labels):\n    while True:\n        try:\n"
                         "            while True:\n                pass\n"
                         "        except BaseException:\n            pass\n"})
    (tmp_path / "stubborn").mkdir()
    _, report = trusted(course, tmp_path / "stubborn", stubborn, cell_timeout=3)
    assert not report.finished and "stopped early" in report.reason
    assert report.verdict("mnist_mlp", "test_softmax").ok  # the tests before it were graded
    assert "ignored the interruption" in report.verdict("mnist_mlp", "test_cross_entropy").message
    assert not report.verdict("mnist_mlp", "test_training").ok  # after it: no verdict, no points


def test_student_output_cannot_forge_a_verdict(course, examples, tmp_path, real_mnist_root):
    """A student's code prints what a verdict line looks like; only nonce-carrying lines count."""
    forged = ('{"kind": "test", "notebook": "mnist_mlp", "cell": "test_softmax", "ok": true, '
              '"nonce": "guess"}')
    notebooks = with_answers(examples, {
        "softmax": f"def softmax(logits):\n    print({forged!r})\n    raise NotImplementedError()\n"})
    job, report = trusted(course, tmp_path, notebooks)
    assert report.finished
    assert not report.verdict("mnist_mlp", "test_softmax").ok
    assert forged in report.log_tail  # it did print, to a log nobody trusts


def test_the_runner_s_memory_and_pipes_are_out_of_reach(course, examples, tmp_path,
                                                         real_mnist_root):
    """Answers may open files for reading; /proc/self (its memory: the nonce, the hidden tests;
    its fds: the results pipe; its environment) must not be among them, root or not."""
    probe = ('def softmax(logits):\n'
             '    found = []\n'
             '    for path in ("/proc/self/mem", "/proc/self/fd/0", "/proc/self/environ"):\n'
             '        try:\n'
             '            with open(path, "rb") as f:\n'
             '                f.read(1)\n'
             '            found.append(path)\n'
             '        except OSError:\n'
             '            pass\n'
             '    raise ValueError("readable: " + ",".join(found))\n')
    assert holds_of(probe) == []  # the policy allows reading files: the process must be closed
    _, report = trusted(course, tmp_path, with_answers(examples, {"softmax": probe}))
    message = report.verdict("mnist_mlp", "test_softmax").message
    assert "readable: " in message and "/proc/self/" not in message.split("readable: ")[1], message


def test_the_server_forks_the_same_verdicts_for_concurrent_runs(course, examples, tmp_path,
                                                                real_mnist_root):
    """Two submissions at once through one trusted-run server: each gets its own verdicts, the
    same as a fresh process gives; the server's children cannot read /proc/self either."""
    aliased = with_answers(examples, {
        "softmax": "from torch import softmax as _sm\n\n\ndef softmax(logits):\n"
                   "    return _sm(logits, dim=-1)\n"})
    server = TrustedServer(trusted_settings(course), lab_imports([SOURCE]))
    results = {}
    try:
        def grade(name, notebooks):
            (tmp_path / name).mkdir()
            results[name] = trusted(course, tmp_path / name, notebooks, server=server)[1]

        threads = [threading.Thread(target=grade, args=args) for args in
                   [("reference", examples[REFERENCE]), ("aliased", aliased)]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.close()
    reference, alias = results["reference"], results["aliased"]
    assert reference.finished and alias.finished, (reference.reason, alias.reason)
    test_cells = [c for c in nbformat.read(str(SOURCE), as_version=4).cells
                  if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert all(v.ok for v in reference.tests.values()) and len(reference.tests) == len(test_cells)
    failed = sorted(cell for (_, cell), v in alias.tests.items() if not v.ok)
    assert failed == ["test_softmax"], failed
    assert "torch.softmax was called" in alias.verdict("mnist_mlp", "test_softmax").message
    assert server.proc.poll() is not None  # closed: no server left behind
