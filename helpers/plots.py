"""Plots for the lab, each returning a matplotlib Figure.

The figures are built with ``matplotlib.figure.Figure``, not ``pyplot``: nothing is shown or
registered globally, so they work headless (Agg, CI) and a notebook displays a returned figure
exactly once. Save one with ``fig.savefig(path)``.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_samples", "plot_history", "plot_confusion", "plot_mistakes", "plot_probabilities"]

RIGHT, WRONG = "tab:green", "tab:red"


def _display_figures_inline() -> None:
    """Let IPython show a returned Figure as a PNG.

    IPython's PNG formatter for figures is registered by pyplot's inline backend, which a figure
    made without pyplot never triggers: without this, a notebook shows ``<Figure size ...>`` text.
    """
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import print_figure
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, lambda fig: print_figure(fig, "png"))


_display_figures_inline()


def _as_images(images: Any) -> np.ndarray:
    """(N, 28, 28) or (N, 784), uint8 or float, numpy or torch -> float array (N, 28, 28)."""
    images = np.asarray(images.detach().cpu() if hasattr(images, "detach") else images)
    if images.ndim == 2 and images.shape[1] == 784:
        images = images.reshape(-1, 28, 28)
    if images.ndim != 3:
        raise ValueError(f"images must have shape (N, 28, 28) or (N, 784), got {images.shape}")
    return images.astype(np.float32)


def _as_array(values: Any) -> np.ndarray:
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)


def _grid(n: int, ncols: int, cell: float = 1.3) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(cell * ncols, (cell + 0.25) * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, list(axes[:n])


def _show_digit(ax, image: np.ndarray, title: str, color: str = "black") -> None:
    ax.imshow(image, cmap="gray_r", interpolation="nearest")
    ax.set_title(title, color=color, fontsize=9)
    ax.set_axis_off()


def plot_samples(images: Any, labels: Any, preds: Any = None, n: int = 16, ncols: int = 8) -> Figure:
    """A grid of the first ``n`` digits with their labels (and predictions, wrong ones in red).

    Args:
        images: (N, 28, 28) or (N, 784), uint8 or float.
        labels: (N,) true labels.
        preds: (N,) predicted labels, or None.
        n: how many digits (at most N).
        ncols: digits per row.

    Returns:
        A Figure with one axes (and one image) per digit.
    """
    images, labels = _as_images(images), _as_array(labels)
    preds = None if preds is None else _as_array(preds)
    n = min(n, len(images))
    if n < 1:
        raise ValueError("no images to plot")
    fig, axes = _grid(n, ncols)
    for i, ax in enumerate(axes):
        if preds is None:
            _show_digit(ax, images[i], f"{labels[i]}")
        else:
            right = preds[i] == labels[i]
            _show_digit(ax, images[i], f"{preds[i]}" if right else f"{preds[i]} (true {labels[i]})",
                        RIGHT if right else WRONG)
    return fig


def _history_dict(history: Any) -> dict:
    return history.to_dict() if hasattr(history, "to_dict") else dict(history)


def plot_history(history: Any) -> Figure:
    """Loss (every step, and per epoch for training and validation) and accuracy per epoch.

    Args:
        history: a ``helpers.training.History`` or its ``to_dict()``.

    Returns:
        A Figure with two axes: loss, accuracy.
    """
    data = _history_dict(history)
    step_loss, epochs = data.get("step_loss", []), data.get("epochs", [])
    steps_per_epoch = data.get("config", {}).get("steps_per_epoch") or max(len(step_loss) // max(len(epochs), 1), 1)
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)

    loss_ax.plot(np.arange(1, len(step_loss) + 1) / steps_per_epoch, step_loss, color="0.75", lw=0.8,
                 label="train (each step)")
    x = [record["epoch"] for record in epochs]
    for key, label, style in (("train", "train", "o-"), ("val", "validation", "s-")):
        loss = [record.get(f"{key}_loss") for record in epochs]
        acc = [record.get(f"{key}_acc") for record in epochs]
        if any(v is not None for v in loss):
            loss_ax.plot(x, [np.nan if v is None else v for v in loss], style, label=f"{label} (epoch)")
        if any(v is not None for v in acc):
            acc_ax.plot(x, [np.nan if v is None else 100 * v for v in acc], style, label=label)
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    if step_loss and min(step_loss) > 0:
        loss_ax.set_yscale("log")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


def plot_confusion(confusion: Any, class_names: Sequence[str] | None = None) -> Figure:
    """The confusion matrix as a heat map with the counts written in the cells.

    Args:
        confusion: (C, C) counts; rows are true labels, columns predicted labels.
        class_names: C names; default 0..C-1.

    Returns:
        A Figure with one axes and one image.
    """
    confusion = _as_array(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise ValueError(f"confusion must be a square (C, C) matrix, got shape {confusion.shape}")
    n = len(confusion)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    fig = Figure(figsize=(0.55 * n + 1.5, 0.55 * n + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.imshow(confusion, cmap="Blues")
    threshold = confusion.max() / 2 if confusion.size else 0
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                    color="white" if count > threshold else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true", title="confusion matrix")
    ax.set_xticklabels(names)
    ax.set_yticklabels(names)
    return fig


def plot_mistakes(images: Any, labels: Any, probs: Any, n: int = 12, ncols: int = 6) -> Figure:
    """The ``n`` most confident mistakes: wrong predictions sorted by the probability given to them.

    Args:
        images: (N, 28, 28) or (N, 784).
        labels: (N,) true labels.
        probs: (N, C) predicted probabilities.
        n: how many mistakes at most.

    Returns:
        A Figure with one axes and image per mistake (a single empty axes saying so when there is none).
    """
    images, labels, probs = _as_images(images), _as_array(labels), _as_array(probs)
    preds = probs.argmax(axis=1)
    wrong = np.flatnonzero(preds != labels)
    if len(wrong) == 0:
        fig = Figure(figsize=(4, 1.5))
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no mistakes", ha="center", va="center")
        ax.set_axis_off()
        return fig
    confidence = probs[wrong, preds[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")][:n]
    fig, axes = _grid(len(chosen), ncols, cell=1.6)
    for ax, i in zip(axes, chosen):
        _show_digit(ax, images[i], f"#{i}: {preds[i]} ({probs[i, preds[i]]:.0%})\ntrue {labels[i]}", WRONG)
    return fig


def plot_probabilities(probs_row: Any, label: int | None = None, class_names: Sequence[str] | None = None) -> Figure:
    """The predicted probabilities for one image as bars; the prediction is coloured, red when wrong.

    Args:
        probs_row: (C,) probabilities.
        label: the true label, or None.
        class_names: C names; default 0..C-1.

    Returns:
        A Figure with one axes.
    """
    probs_row = _as_array(probs_row).astype(float).ravel()
    n = len(probs_row)
    names = list(class_names) if class_names is not None else [str(i) for i in range(n)]
    predicted = int(probs_row.argmax())
    colors = ["0.7"] * n
    colors[predicted] = RIGHT if label is None or label == predicted else WRONG
    fig = Figure(figsize=(4, 2.6), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(n), probs_row, color=colors)
    ax.set(xticks=range(n), ylim=(0, 1), ylabel="probability")
    ax.set_xticklabels(names)
    title = f"predicted {names[predicted]} ({probs_row[predicted]:.1%})"
    if label is not None:
        title += f", true {names[label]}"
        ax.get_xticklabels()[label].set_fontweight("bold")
    ax.set_title(title, fontsize=10)
    return fig
