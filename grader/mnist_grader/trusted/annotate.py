"""The trusted run's verdict under each test cell of an autograded notebook (runs in the parent).

nbgrader's autograded notebook shows what the student's kernel printed, visible tests only. The
grade also depends on the trusted run, so each test cell gets one more output saying what it found:
the message the instructor wrote for the failing check (or the error the student's code raised),
never a traceback and never the source of a hidden test. Formgrader and the feedback show it.
"""
from __future__ import annotations

from pathlib import Path

import nbformat

from mnist_grader.cells import is_test_cell
from mnist_grader.trusted.launch import TrustedReport

#: Marks the outputs this module adds (so running it twice replaces rather than repeats them).
MARK = "instructor-trusted-verdict"


def verdict_text(report: TrustedReport, notebook: str, cell: str, held: list[str]) -> str:
    """One paragraph (Markdown) on a test cell's trusted verdict."""
    if held:
        return ("**Grader:** held for review by the instructor; the autograded points of this "
                "submission count once the instructor has looked at it.")
    verdict = report.verdict(notebook, cell)
    if verdict.ok:
        return "**Grader:** every check of this task passed, hidden checks included."
    where = "a hidden check" if verdict.failed_in == "hidden" else "a check"
    return f"**Grader:** {where} of this task failed: {verdict.message}"


def annotate_notebook(path: Path, report: TrustedReport, held: list[str]) -> None:
    """Add (or replace) the verdict output of every autograded test cell of ``path``, in place."""
    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        text = verdict_text(report, path.stem, cell.metadata.nbgrader["grade_id"], held)
        cell.outputs = [o for o in cell.get("outputs", [])
                        if o.get("metadata", {}).get(MARK) is None]
        cell.outputs.append(nbformat.v4.new_output(
            "display_data", data={"text/markdown": text, "text/plain": text},
            metadata={MARK: True}))
    # nbgrader leaves its output read-only (0444): only root could write over it as it is
    path.chmod(0o644)
    nbformat.write(nb, str(path))
