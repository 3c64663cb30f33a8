"""A static scan of a submission for code that tampers with grading, so a human looks at it.

The sandbox stops process-level harm, and nbgrader restores test cells, but code that runs in the
same interpreter as the hidden tests can try to subvert them (see ``instructor.sandbox``). Such code
has no business in an MLP assignment, so finding it is a strong signal: the grader flags the
submission in the gradebook and in its summary. It is a tripwire, not a proof: obfuscated code can
get past a pattern list, and a flag is a request for a human review, not a verdict.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

#: (regular expression, why it is suspicious). Checked on student-editable code cells only.
PATTERNS: list[tuple[str, str]] = [
    (r"showtraceback|set_custom_exc|\bCustomTB\b|excepthook", "changes how errors are reported"),
    (r"input_transformers|ast_transformers|\brun_cell\b|\brun_code\b|events\.register",
     "changes how IPython runs cells"),
    (r"sys\.settrace|sys\.setprofile|threading\.settrace", "traces execution"),
    (r"\b(np|numpy|torch|math)\.(allclose|isclose|testing|array_equal|equal)\s*=(?!=)",
     "rebinds a comparison function"),
    (r"\bnp\.testing\.\w+\s*=(?!=)|\bassert_\w+\s*=(?!=)", "rebinds a test helper"),
    (r"def\s+__eq__[^:]*:\s*(#.*)?\n?\s*return\s+True", "an __eq__ that is always True"),
    (r"\bbuiltins\b|__builtins__|sys\.modules", "edits the interpreter's modules"),
    (r"\bos\._exit\b|\bsys\.exit\b|\bos\.kill\b|signal\.signal", "exits or handles signals"),
    (r"\bos\.fork\b|\bsubprocess\b|\bos\.system\b|\bos\.popen\b|multiprocessing\b",
     "starts processes"),
    (r"\bctypes\b|\bgc\.get_(referrers|objects)\b", "reaches into the interpreter's memory"),
    (r"gradebook|\.db['\"]|['\"/]source/|nbgrader", "touches the grading machinery"),
    (r"\bexec\s*\(|\beval\s*\(|\bcompile\s*\(|base64|codecs\.decode", "runs hidden code"),
]
_COMPILED = [(re.compile(p), why) for p, why in PATTERNS]

#: Reasons for code that can subvert the hidden tests from inside their own interpreter, where
#: neither the sandbox nor nbgrader's cell restoring can stop it. A submission with such code gets
#: its autograded scores held at 0 and marked for manual grading: never a grade it did not earn;
#: the instructor reviews it in Formgrader and gives the points back by hand if it was innocent.
HOLD_REASONS = {
    "changes how errors are reported",
    "changes how IPython runs cells",
    "traces execution",
    "edits the interpreter's modules",
    "reaches into the interpreter's memory",
}


def suspicious_lines(notebook_path: Path) -> list[tuple[str, str]]:
    """Suspicious code in the cells a student can edit.

    Args:
        notebook_path: a submitted notebook.

    Returns:
        (where, why) pairs, e.g. ("cell 4", "rebinds a comparison function"); empty when clean.
    """
    try:
        nb = nbformat.read(str(notebook_path), as_version=4)
    except Exception as exc:  # an unreadable notebook is itself worth a look
        return [("file", f"cannot be read as a notebook ({type(exc).__name__})")]
    found = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or meta.get("locked") or (meta.get("grade") and not
                                                                meta.get("solution")):
            continue  # instructor cells: nbgrader restores them from the gradebook anyway
        source = cell.source
        for pattern, why in _COMPILED:
            if pattern.search(source):
                found.append((f"cell {index}", why))
    return found
