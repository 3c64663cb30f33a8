"""The checks that hidden tests call, and switches for the ready-made functions a task forbids.

Hidden tests (written by the instructor in ``source/``, between nbgrader's hidden-test markers)
import this module: ``from mnist_grader.trusted.harness import Checks``. In a grading run they execute
only in the trusted run (``mnist_grader.trusted.runner``), which imports this module and installs every
switch before it loads any student definition, so the references captured here (the C-level
``tolist`` methods, the original functions behind each switch) are the real ones. Run in an ordinary
kernel (an instructor validating ``source/``), the same code works; switches are then installed when
first used.

Values are read out through C-level methods (``ndarray.tolist``, ``TensorBase.tolist``) and compared
with Python's float operators, so nothing a student rebinds in numpy or torch changes a verdict.
"""
from __future__ import annotations

import functools
import importlib

import numpy as _np
import torch as _torch

_TENSOR_TOLIST = _torch._C.TensorBase.tolist
_NDARRAY_TOLIST = _np.ndarray.tolist
_TENSOR_BASE = _torch._C.TensorBase
_TENSOR = _torch.Tensor
_NDARRAY = _np.ndarray
_type, _float, _int, _list, _len, _zip = type, float, int, list, len, zip

#: dotted name -> the original callable, for every switch installed in this process
_ORIGINALS: dict[str, object] = {}
#: dotted names switched off right now
_SWITCHED_OFF: set[str] = set()


class OffLimitsError(AssertionError):
    """A ready-made function that a task forbids was called while its tests ran."""


def _resolve(dotted: str) -> tuple[object, str]:
    """``"torch.nn.functional.softmax"`` -> (the module torch.nn.functional, "softmax");
    ``"torch.Tensor.softmax"`` -> (the class torch.Tensor, "softmax")."""
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:-1]:
            owner = getattr(owner, attr)
        return owner, parts[-1]
    raise ValueError(f"cannot find {dotted!r}: name a function as module.function or "
                     f"module.Class.method")


def install_switch(dotted: str) -> None:
    """Replace ``dotted`` by a wrapper that refuses to run while the name is switched off.

    Installed before student code is loaded, the wrapper is what ``from torch import softmax``
    or ``F = torch.nn.functional`` hand the student, so no alias escapes the switch.
    """
    if dotted in _ORIGINALS:
        return
    owner, name = _resolve(dotted)
    original = getattr(owner, name)

    @functools.wraps(original)
    def switch(*args, **kwargs):
        if dotted in _SWITCHED_OFF:
            raise OffLimitsError(f"{dotted} was called: it is off limits in this task; write the "
                                 f"computation yourself (see the task's description)")
        return original(*args, **kwargs)

    setattr(owner, name, switch)
    _ORIGINALS[dotted] = original


class off_limits:
    """``with off_limits("torch.softmax", "torch.Tensor.softmax"):`` calling any of them raises
    ``OffLimitsError`` naming the function that was called."""

    def __init__(self, *dotted_names: str):
        self.names = dotted_names

    def __enter__(self):
        for name in self.names:
            install_switch(name)
        self.before = set(_SWITCHED_OFF)
        _SWITCHED_OFF.update(self.names)
        return self

    def __exit__(self, *exc):
        _SWITCHED_OFF.intersection_update(self.before)
        return False


class Checks:
    """Checks for hidden tests; subclass it in a notebook to add the assignment's own constants."""

    off_limits = off_limits

    @staticmethod
    def values(x, what):
        """A tensor or ndarray as nested Python lists of Python numbers."""
        if isinstance(x, _TENSOR_BASE):
            return _TENSOR_TOLIST(x)
        if isinstance(x, _NDARRAY):
            return _NDARRAY_TOLIST(x)
        raise AssertionError(f"{what} should be a tensor or array, not {_type(x).__name__}")

    @staticmethod
    def shape(nested):
        dims = []
        while _type(nested) is _list:
            dims.append(_len(nested))
            nested = nested[0] if _len(nested) else None
        return tuple(dims)

    @staticmethod
    def flat(nested):
        if _type(nested) is _list:
            return [v for item in nested for v in Checks.flat(item)]
        return [nested]

    @staticmethod
    def close(actual, expected, what, fix, atol=1e-5, rtol=1e-4):
        """`actual` (tensor, ndarray or values) has the shape and values of `expected`, all finite."""
        got = actual if _type(actual) is _list else Checks.values(actual, what)
        if Checks.shape(got) != Checks.shape(expected):
            raise AssertionError(f"{what}: shape {Checks.shape(got)} where {Checks.shape(expected)} "
                                 f"was expected. {fix}")
        for a, e in _zip(Checks.flat(got), Checks.flat(expected)):
            if _type(a) not in (_float, _int) or not a - a == 0:
                raise AssertionError(f"{what}: inf or nan. {fix}")
            tol = atol + rtol * (e if e >= 0 else -e)
            if not -tol <= a - e <= tol:
                raise AssertionError(f"{what}: wrong values. {fix}")

    @staticmethod
    def is_tensor(x, what, dtype, shape):
        """x is exactly a torch.Tensor of this dtype and shape."""
        if _type(x) is not _TENSOR:
            raise AssertionError(f"{what} should be a torch.Tensor, not {_type(x).__name__}")
        if x.dtype is not dtype:
            raise AssertionError(f"{what} should have dtype {dtype}, not {x.dtype}")
        if tuple(x.shape) != tuple(shape):
            raise AssertionError(f"{what} should have shape {tuple(shape)}, not {tuple(x.shape)}")

    @staticmethod
    def call(what, function, *args):
        """function(*args); any error becomes an AssertionError that names the task."""
        try:
            return function(*args)
        except OffLimitsError as err:
            raise OffLimitsError(f"{what}: {err}") from None
        except Exception as err:
            raise AssertionError(f"{what} raised {_type(err).__name__}: {err}") from None
