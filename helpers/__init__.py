"""Helpers for the MNIST MLP course: verified data loading, the training loop, evaluation, plots, widgets.

The lab's tasks (parsing IDX bytes, the Dataset, collate_func, softmax, cross entropy, the MLP)
are the student's; this package is the plumbing around them.
"""
from importlib import import_module

from .data import DataError, load_mnist

# Public names from the heavier modules, imported on first use: `import helpers` stays instant and
# `python -m helpers.train` does not pay for matplotlib or ipywidgets.
_LAZY = {
    "fit": "training", "History": "training", "seed_everything": "training",
    "ModelProtocolError": "protocol", "BatchProtocolError": "protocol", "ProtocolError": "protocol",
    "evaluate": "evaluation", "Evaluation": "evaluation",
    "plot_samples": "plots", "plot_history": "plots", "plot_confusion": "plots", "plot_mistakes": "plots",
    "plot_probabilities": "plots", "plot_runs": "plots", "plot_curves": "plots", "plot_first_layer": "plots",
    "digit_browser": "widgets", "LiveTrainingView": "widgets", "hidden_size_explorer": "widgets",
}

__all__ = ["DataError", "load_mnist", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
