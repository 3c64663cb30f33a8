"""A feedback preprocessor that keeps hidden tests out of what students see.

nbgrader's ``ClearHiddenTests`` removes hidden test SOURCE from the feedback, but a failing hidden
test's traceback still quotes the hidden lines around the failure (measured, see PLATFORM.md), and
anything the student's code printed may quote them too. ``ScrubHiddenTests`` runs before
``ClearHiddenTests`` (while the hidden lines are still in the cells), collects them, and then:

* turns the hidden-test marker in a student's own cells into plain text (with the marker there,
  ``ClearHiddenTests`` would fail that student's whole feedback);
* in a test cell that has hidden tests, replaces each error's traceback by its last line, the
  failure message the instructor wrote for students (``AssertionError: <message>``);
* in every cell, drops any output line or traceback entry that contains a hidden line.
"""
from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: hidden lines shorter than this (``pass``, ``else:``) are too common to be a secret
MIN_SECRET = 12
NOTE = "(traceback removed: this test includes hidden checks)"


def hidden_lines(source: str) -> list[str]:
    """The lines between the hidden-test markers of a cell, stripped, long enough to matter."""
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside and len(line.strip()) >= MIN_SECRET:
            lines.append(line.strip())
    return lines


def is_test_cell(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution")


def quotes_secret(text: str, secrets: set[str]) -> bool:
    plain = _ANSI.sub("", text)
    return any(secret in plain for secret in secrets)


class ScrubHiddenTests(Preprocessor):
    """See the module docstring."""

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess(self, nb, resources):
        visible = set()
        secrets: set[str] = set()
        for cell in nb.cells:
            if not is_test_cell(cell):
                # a student's own text with the marker would make ClearHiddenTests fail the
                # whole feedback; only instructor test cells can hold hidden tests
                cell.source = cell.source.replace("HIDDEN TESTS", "HIDDEN_TESTS")
            secret = hidden_lines(cell.source)
            secrets.update(secret)
            visible.update(line.strip() for line in cell.source.splitlines()
                           if line.strip() not in secret)
        secrets -= visible  # a line that is also shown elsewhere is no secret
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            has_hidden = is_test_cell(cell) and BEGIN in cell.source
            for output in cell.get("outputs", []):
                scrub_output(output, secrets, shorten_traceback=has_hidden)
        return nb, resources


def scrub_output(output, secrets: set[str], shorten_traceback: bool) -> None:
    if output.get("output_type") == "error":
        traceback = output.get("traceback", [])
        if shorten_traceback:
            traceback = traceback[-1:] + [NOTE]
        output["traceback"] = [entry for entry in traceback if not quotes_secret(entry, secrets)]
        if quotes_secret(output.get("evalue", ""), secrets):
            output["evalue"] = "(message removed: it quotes a hidden test)"
    elif output.get("output_type") == "stream":
        output["text"] = "".join(line for line in output["text"].splitlines(keepends=True)
                                 if not quotes_secret(line, secrets))
    else:
        data = output.get("data", {})
        for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
            if mime in data:
                text = data[mime] if isinstance(data[mime], str) else "".join(data[mime])
                data[mime] = "".join(line for line in text.splitlines(keepends=True)
                                     if not quotes_secret(line, secrets))
