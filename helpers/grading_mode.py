"""While nbgrader runs the lab, the helpers' figures and widgets draw nothing.

nbgrader sets ``NBGRADER_EXECUTION`` in the kernel while it validates or grades a notebook (the lab
reads it too, to train less). Nobody looks at the pictures of that run, and drawing them (the 32
first-layer images, the confusion matrix, the mistakes, the digit grids) took about a third of the
kernel's time per graded submission; so then every plot and widget of this package returns a
one-line placeholder instead. A student running the lab sees every figure as before. No grade
depends on it: no test cell reads a figure, and setting or clearing the variable from student code
changes only whether pictures are drawn.
"""
from __future__ import annotations

import functools
import os
from typing import Any, Callable, TypeVar

__all__ = ["grading", "NotDrawn", "not_drawn_while_grading"]

Draw = TypeVar("Draw", bound=Callable[..., Any])


def grading() -> bool:
    """Whether nbgrader is running this notebook (validate or autograde)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


class NotDrawn:
    """What a plot or widget returns while grading: shown as one line of text.

    Attributes:
        what: the name of the function that would have drawn.
    """

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"[{self.what}: not drawn while nbgrader runs the notebook]"


def not_drawn_while_grading(draw: Draw) -> Draw:
    """Decorator: ``draw`` returns ``NotDrawn`` (without running) while grading."""

    @functools.wraps(draw)
    def draw_unless_grading(*args: Any, **kwargs: Any) -> Any:
        if grading():
            return NotDrawn(draw.__name__)
        return draw(*args, **kwargs)

    return draw_unless_grading  # type: ignore[return-value]
