"""Runs in the ``nbgrader autograde`` process: caps on what a student's notebook may print.

They are enforced while nbgrader runs the notebook.

nbgrader keeps every output message of the kernel in memory and writes it into the autograded
notebook and the feedback page: 200 MB printed becomes a 210 MB notebook, 1 GB takes nbgrader to
several GB of memory. ``CappedExecute`` is nbgrader's ``Execute`` with nbclient's ``output`` hook
overridden: once a cell (or the whole notebook) has produced its cap of output, further output is
dropped as it arrives and one visible note says how much was trimmed. Trimming never changes a
grade: nbgrader scores a test cell from its first ``error`` or stderr output (0 points) or its first
``execute_result`` (partial credit), so the first of each kind in a cell is always kept (shortened).

Not bounded here: the size of one single message (nbclient reads it whole before any hook runs);
the kernel's RLIMIT_AS bounds how big a string it can send.
"""
from __future__ import annotations

import typing as t

from nbformat.notebooknode import NotebookNode
from traitlets import Integer

from nbgrader.preprocessors import Execute

#: nbgrader's autograde preprocessors (0.9.6) with ``Execute`` replaced by ``CappedExecute``
AUTOGRADE_PREPROCESSORS = [
    "mnist_grader.grading.output_cap.CappedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

#: what is kept of an output that decides a grade (an error, stderr, the first result) once over cap
_KEPT_CHARS = 2000


def trim_note(trimmed: int) -> str:
    return f"\n[output trimmed: {trimmed} bytes over the grader's limit]\n"


def output_size(output: NotebookNode) -> int:
    """Characters an output holds (text, data of every MIME type, traceback)."""
    kind = output.get("output_type")
    if kind == "stream":
        return len(output.get("text", ""))
    if kind == "error":
        return len(output.get("evalue", "")) + sum(len(line) for line in output.get("traceback", []))
    return sum(len(v) if isinstance(v, str) else len(str(v))
               for v in output.get("data", {}).values())


def shortened(output: NotebookNode) -> NotebookNode:
    """A bounded copy of an output that decides a grade (same kind, same stream name)."""
    kind = output.get("output_type")
    if kind == "stream":
        output["text"] = output["text"][:_KEPT_CHARS]
    elif kind == "error":
        output["evalue"] = output.get("evalue", "")[:_KEPT_CHARS]
        output["traceback"] = [line[:_KEPT_CHARS] for line in output.get("traceback", [])[-20:]]
    else:
        output["data"] = {k: v[:_KEPT_CHARS] for k, v in output.get("data", {}).items()
                          if k == "text/plain" and isinstance(v, str)}
        output["metadata"] = {}
    return output


class CappedExecute(Execute):
    """nbgrader's ``Execute`` with caps on output per cell and per notebook (see the module)."""

    max_cell_output = Integer(
        2 * 2**20, help="output characters kept per cell; the rest is dropped with a note"
    ).tag(config=True)
    max_notebook_output = Integer(
        20 * 2**20, help="output characters kept per notebook; the rest is dropped with a note"
    ).tag(config=True)

    def reset_execution_trackers(self) -> None:
        """Called by nbclient before each notebook: the caps start from zero."""
        super().reset_execution_trackers()
        self._cell_used: dict[int, int] = {}
        self._trimmed: dict[int, int] = {}
        self._notes: dict[int, NotebookNode] = {}

    def _notebook_used(self) -> int:
        return sum(self._cell_used.values())

    def output(self, outs: list[NotebookNode], msg: dict[str, t.Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        if getattr(self, "clear_before_next_output", False):  # a delayed clear_output empties the cell
            self._forget(cell_index)
        before = len(outs)
        out = super().output(outs, msg, display_id, cell_index)
        if out is None or len(outs) == before or outs[-1] is not out:
            return out
        size = output_size(out)
        used = self._cell_used.get(cell_index, 0)
        if used + size <= self.max_cell_output and \
                self._notebook_used() + size <= self.max_notebook_output:
            self._cell_used[cell_index] = used + size
            return out
        outs.pop()  # over a cap: keep it only if it decides the grade, shortened
        if self._decides_grade(outs, out):
            out = shortened(out)
            outs.append(out)
            kept = output_size(out)
            self._cell_used[cell_index] = used + kept
            size -= kept
        self._note(outs, cell_index, size)
        return out

    def clear_output(self, outs: list[NotebookNode], msg: dict[str, t.Any], cell_index: int) -> None:
        super().clear_output(outs, msg, cell_index)
        if not outs:
            self._forget(cell_index)

    def _forget(self, cell_index: int) -> None:
        self._cell_used.pop(cell_index, None)
        self._notes.pop(cell_index, None)
        self._trimmed.pop(cell_index, None)

    @staticmethod
    def _decides_grade(outs: list[NotebookNode], out: NotebookNode) -> bool:
        """Whether nbgrader's ``determine_grade`` would read ``out``: the first error or stderr
        output, or the first result, of the cell."""
        def zero(o):
            return o.get("output_type") == "error" or (o.get("output_type") == "stream"
                                                        and o.get("name") == "stderr")
        if zero(out):
            return not any(zero(o) for o in outs)
        if out.get("output_type") == "execute_result":
            return not any(o.get("output_type") == "execute_result" for o in outs)
        return False

    def _note(self, outs: list[NotebookNode], cell_index: int, trimmed: int) -> None:
        """Add (or update) the cell's one visible note of how much output was dropped."""
        self._trimmed[cell_index] = self._trimmed.get(cell_index, 0) + trimmed
        note = self._notes.get(cell_index)
        if note is None or not any(o is note for o in outs):
            note = NotebookNode(output_type="stream", name="stdout", text="")
            outs.append(note)
            self._notes[cell_index] = note
        note["text"] = trim_note(self._trimmed[cell_index])
