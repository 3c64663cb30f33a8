"""Plots for the lab, each returning a matplotlib Figure.

The figures are built with ``matplotlib.figure.Figure``, not ``pyplot``: nothing is shown or
registered globally, so they work headless (Agg, CI) and a notebook displays a returned figure
exactly once. Save one with ``fig.savefig(path)``. While nbgrader runs the notebook each returns a
one-line placeholder instead (``helpers.grading_mode``).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter, MaxNLocator

from .grading_mode import not_drawn_while_grading

__all__ = ["plot_samples", "plot_history", "plot_runs", "plot_curves", "plot_confusion", "plot_mistakes",
           "plot_probabilities", "plot_first_layer"]

RIGHT, WRONG = "tab:green", "tab:red"
IMAGE_SIDE = 28
N_PIXELS = IMAGE_SIDE * IMAGE_SIDE


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


def _show_digit(ax, image: np.ndarray, title: str, color: str = "black", fontsize: float = 9) -> None:
    ax.imshow(image, cmap="gray_r", interpolation="nearest")
    ax.set_title(title, color=color, fontsize=fontsize)
    ax.set_axis_off()


@not_drawn_while_grading
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


class PlainLogFormatter(LogFormatter):
    """Labels the ticks that matplotlib's log formatter would label, as plain numbers ("0.2", "3")."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _log_scale_plain(ax) -> None:
    """A log y axis labelled with plain numbers ("0.2", "2"), not matplotlib's default "2x10^-1"."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(PlainLogFormatter())
    ax.yaxis.set_minor_formatter(PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _finish_loss_axis(ax, values: Sequence[float]) -> None:
    """Labels, integer epoch ticks, a grid, and a log scale when every loss is positive (losses shrink by
    orders of magnitude)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if finite and min(finite) > 0:
        _log_scale_plain(ax)
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _finish_accuracy_axis(ax, note: str = "accuracy is measured at the end of each epoch") -> None:
    """Accuracy in percent on 0..100 ticks, even while the axes is still empty (then it says why)."""
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not ax.lines:
        ax.set_ylim(0, 100)
        ax.text(0.5, 0.5, note, transform=ax.transAxes, ha="center", va="center", color="0.4", wrap=True)
    ax.grid(alpha=0.3)


def _epoch_values(epochs: Sequence[dict], key: str, scale: float = 1.0) -> list[float] | None:
    """One value per epoch (NaN where missing), or None when no epoch has it."""
    values = [record.get(key) for record in epochs]
    if all(v is None for v in values):
        return None
    return [np.nan if v is None else scale * v for v in values]


def _steps_per_epoch(data: dict) -> int:
    step_loss, epochs = data.get("step_loss", []), data.get("epochs", [])
    return data.get("config", {}).get("steps_per_epoch") or max(len(step_loss) // max(len(epochs), 1), 1)


@not_drawn_while_grading
def plot_history(history: Any) -> Figure:
    """Loss (every step, and per epoch for training and validation) and accuracy per epoch.

    Args:
        history: a ``helpers.training.History`` or a dict of the same shape (``step_loss``: the
            loss of every step; ``epochs``: one dict per epoch with ``epoch`` and any of
            ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``; optional
            ``config["steps_per_epoch"]``).

    Returns:
        A Figure with two axes: loss (log scale, plain tick labels), accuracy in %.
    """
    data = _history_dict(history)
    step_loss, epochs = data.get("step_loss", []), data.get("epochs", [])
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)

    loss_ax.plot(np.arange(1, len(step_loss) + 1) / _steps_per_epoch(data), step_loss, color="0.75", lw=0.8,
                 label="train (each step)")
    x = [record["epoch"] for record in epochs]
    # the same colour for a data set in both panels, also when one panel lacks the training curve
    for key, label, style, color in (("train", "train", "o-", "tab:blue"), ("val", "validation", "s-", "tab:orange")):
        loss, acc = _epoch_values(epochs, f"{key}_loss"), _epoch_values(epochs, f"{key}_acc", 100)
        if loss is not None:
            loss_ax.plot(x, loss, style, color=color, label=f"{label} (epoch)")
        if acc is not None:
            acc_ax.plot(x, acc, style, color=color, label=label)
    _finish_loss_axis(loss_ax, step_loss)
    _finish_accuracy_axis(acc_ax)
    for ax in (loss_ax, acc_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return fig


@not_drawn_while_grading
def plot_runs(runs: Mapping[str, Any]) -> Figure:
    """Several training runs overlaid, one colour per run: loss and accuracy against the epoch.

    The training loss is drawn for every step (thin), the validation loss per epoch (markers);
    accuracy is dashed for training (counted on the batches while the epoch trained) and solid
    with markers for validation.

    Args:
        runs: run name -> History (or its dict), in the order to draw them.

    Returns:
        A Figure with two axes: loss, with one legend entry per run, and accuracy, whose legend
        explains the line styles.
    """
    if not runs:
        raise ValueError("no runs to plot: pass {name: history, ...} with at least one run")
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    colors = colormaps["tab10"].colors
    all_losses: list[float] = []
    for i, (name, history) in enumerate(runs.items()):
        data, color = _history_dict(history), colors[i % len(colors)]
        step_loss, epochs = data.get("step_loss", []), data.get("epochs", [])
        x = [record["epoch"] for record in epochs]
        loss_ax.plot(np.arange(1, len(step_loss) + 1) / _steps_per_epoch(data), step_loss, color=color, lw=0.7,
                     alpha=0.6, label=name)
        val_loss = _epoch_values(epochs, "val_loss")
        if val_loss is not None:
            loss_ax.plot(x, val_loss, "o-", color=color)
            all_losses += val_loss
        for key, style, label in (("train_acc", "--", "train"), ("val_acc", "o-", "validation")):
            acc = _epoch_values(epochs, key, 100)
            if acc is not None:
                acc_ax.plot(x, acc, style, color=color)
        all_losses += step_loss
    loss_ax.legend(title="thin: train (each step)\ndots: validation", fontsize=8, title_fontsize=8)
    _finish_loss_axis(loss_ax, all_losses)
    _finish_accuracy_axis(acc_ax)
    if acc_ax.lines:  # the colours are explained by the loss legend; this one explains the line styles
        acc_ax.legend([Line2D([], [], color="0.3", ls="--"), Line2D([], [], color="0.3", marker="o")],
                      ["train (during the epoch)", "validation"], fontsize=8)
    return fig


@not_drawn_while_grading
def plot_curves(curves: Mapping[Any, Sequence[float]], *, xlabel: str = "step", ylabel: str = "loss",
                title: str = "", log_y: bool = True) -> Figure:
    """Several curves overlaid on one axes, one colour and legend entry each (e.g. one per learning rate).

    Args:
        curves: label -> the y values (x is 1, 2, ...); NaN or infinite values leave gaps.
        xlabel, ylabel, title: the axis labels and the title.
        log_y: a log y axis with plain tick labels (when every finite value is positive).

    Returns:
        A Figure with one axes and one line per curve.
    """
    if not curves:
        raise ValueError("no curves to plot: pass {label: values, ...} with at least one curve")
    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    finite: list[float] = []
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        values = np.where(np.isfinite(values), values, np.nan)
        ax.plot(np.arange(1, len(values) + 1), values, lw=1, label=str(label))
        finite += values[np.isfinite(values)].tolist()
    if log_y and finite and min(finite) > 0:
        _log_scale_plain(ax)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


@not_drawn_while_grading
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
    fig = Figure(figsize=(0.5 * n + 1.4, 0.5 * n + 1.1), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=10 if n <= 10 else 8,
                    color=_ink_for(image.cmap(image.norm(count))))
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted", ylabel="true",
           title="confusion matrix: rows true, columns predicted")
    ax.set_xticklabels(names)
    ax.set_yticklabels(names)
    return fig


def _ink_for(background: Sequence[float]) -> str:
    """Black on light colours, white on dark ones (by the colour's relative luminance, as in WCAG)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in background[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # the luminance where black and white text have the same contrast ratio
    return "black" if luminance > 0.179 else "white"


@not_drawn_while_grading
def plot_mistakes(images: Any, labels: Any, probs: Any, n: int = 12, ncols: int = 6) -> Figure:
    """The ``n`` most confident mistakes: wrong predictions sorted by the probability given to them.

    Args:
        images: (N, 28, 28) or (N, 784).
        labels: (N,) true labels.
        probs: (N, C) predicted probabilities.
        n: how many mistakes at most.

    Returns:
        A Figure with one axes and image per mistake, titled "#index: predicted digit (probability)"
        over "true label", and a caption saying how to read the titles (a single empty axes saying
        so when there is no mistake).
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
    fig, axes = _grid(len(chosen), ncols, cell=1.8)
    for ax, i in zip(axes, chosen):
        _show_digit(ax, images[i], f"#{i}: predicted {preds[i]} ({_confidence(probs[i, preds[i]])})\ntrue {labels[i]}",
                    WRONG, fontsize=8)
    fig.suptitle(f"The {len(chosen)} most confident of {len(wrong)} mistakes. Above each image: its index, the "
                 "predicted digit with the probability the model gave it, and the true label.",
                 fontsize=9, wrap=True)
    return fig


def _confidence(probability: float) -> str:
    """A probability in percent: whole numbers, one decimal above 99 % (rounded down: never "100%" unless it is)."""
    if probability < 0.99 or probability >= 1:
        return f"{probability:.0%}"
    return f"{np.floor(probability * 1000) / 10:.1f}%"


@not_drawn_while_grading
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


def first_layer_weights(model_or_weight: Any) -> np.ndarray:
    """The first layer's weights as (hidden units, 784), from a model or a weight tensor/array.

    Args:
        model_or_weight: an ``nn.Module`` whose first ``nn.Linear`` (in the order ``modules()``
            lists them, which is the order they were created) takes the 784 pixels, or its
            weight, a tensor or array of shape (hidden units, 784).

    Returns:
        A float array (hidden units, 784).

    Raises:
        ValueError: no ``nn.Linear`` in the model, its first takes something other than 784
            inputs, or a weight that is not (hidden units, 784).
    """
    from torch import nn  # only here: the other plots do not need torch

    if isinstance(model_or_weight, nn.Module):
        linears = [m for m in model_or_weight.modules() if isinstance(m, nn.Linear)]
        name = type(model_or_weight).__name__
        if not linears:
            raise ValueError(f"{name} has no nn.Linear layer: pass a model whose first layer is "
                             f"nn.Linear({N_PIXELS}, hidden units), or that layer's weight")
        if linears[0].in_features != N_PIXELS:
            raise ValueError(f"the first nn.Linear of {name} takes {linears[0].in_features} inputs, not the "
                             f"{N_PIXELS} pixels of an image: create the input layer first in __init__, or pass "
                             "its weight")
        model_or_weight = linears[0].weight
    weight = _as_array(model_or_weight)
    if weight.ndim != 2 or weight.shape[1] != N_PIXELS:
        raise ValueError(f"the first layer's weight must have shape (hidden units, {N_PIXELS}), as "
                         f"nn.Linear({N_PIXELS}, H).weight has; got shape {weight.shape}")
    return weight.astype(np.float32)


@not_drawn_while_grading
def plot_first_layer(model_or_weight: Any, n: int = 32, ncols: int = 8) -> Figure:
    """What the first hidden units look for: each unit's 784 input weights drawn as a 28x28 image.

    Red pixels raise the unit's input when they hold ink, blue ones lower it, white ones do not
    matter (a diverging colour map centred at 0, one scale shared by all units, so that strong and
    weak units can be compared).

    Args:
        model_or_weight: a model whose first ``nn.Linear`` takes the 784 pixels (e.g. the lab's
            MNISTClassifier), or that layer's weight (hidden units, 784) as a tensor or array.
        n: how many units to show (the first ``n``; at most all of them).
        ncols: images per row.

    Returns:
        A Figure with one axes and image per unit, a title and a colour bar.

    Raises:
        ValueError: see ``first_layer_weights``; n < 1.
    """
    weight = first_layer_weights(model_or_weight)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive int (how many hidden units to show), got {n!r}")
    n = min(int(n), len(weight))
    # one shared scale; the 99.5th percentile keeps a few extreme pixels from washing out the rest
    limit = float(np.percentile(np.abs(weight[:n]), 99.5)) or 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit)
    fig, axes = _grid(n, ncols, cell=1.1)
    for unit, ax in enumerate(axes):
        shown = ax.imshow(weight[unit].reshape(IMAGE_SIDE, IMAGE_SIDE), cmap="RdBu_r", norm=norm,
                          interpolation="nearest")
        ax.set_title(f"unit {unit}", fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"First layer: the {N_PIXELS} input weights of hidden units 0-{n - 1} (of {len(weight)}) "
                 "as 28x28 images\nred: ink there raises the unit, blue: ink there lowers it", fontsize=10)
    fig.colorbar(shown, ax=axes, shrink=0.8, label="weight", extend="both")
    return fig
