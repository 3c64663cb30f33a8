"""Helpers for the MNIST MLP course: verified data loading, the training loop, evaluation, plots, widgets.

The lab's tasks (parsing IDX bytes, the Dataset, collate_func, softmax, cross entropy, the MLP)
are the student's; this package is the plumbing around them.
"""
from .data import DataError, load_mnist

__all__ = ["DataError", "load_mnist"]
__version__ = "0.1.0"
