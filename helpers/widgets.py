"""Notebook widgets (ipywidgets): a digit browser, a live training view, a hidden-size explorer.

Pictures are rendered with matplotlib's Agg into PNG bytes and shown in ``ipywidgets.Image``:
the widgets then work in any Jupyter front end, redraw in place, and can be built and driven
without a browser (the tests set a slider's value and check that the picture changed).
"""
from __future__ import annotations

import html
import io
import time
from typing import Any, Callable, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import imsave

from .batching import resolve_device
from .grading_mode import NotDrawn, not_drawn_while_grading
from .plots import RIGHT, WRONG, _as_array, _as_images, plot_history, plot_probabilities, plot_runs
from .protocol import check_eval_output
from .training import History, fit

__all__ = ["digit_browser", "DigitBrowser", "LiveTrainingView", "hidden_size_explorer", "HiddenSizeExplorer"]


def figure_png(fig: Figure | NotDrawn, dpi: int = 72) -> bytes:
    """The figure rendered to PNG bytes (none for a figure not drawn while grading)."""
    if isinstance(fig, NotDrawn):
        return b""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def empty_image(width: int) -> widgets.Image:
    """An Image widget kept hidden until it gets a picture (an empty one shows a broken-image icon)."""
    return widgets.Image(format="png", width=width, layout=widgets.Layout(display="none"))


def show_png(image: widgets.Image, png: bytes) -> None:
    """Put a picture into an Image widget and make it visible (an empty one stays hidden)."""
    image.value = png
    image.layout.display = None if png else "none"


def digit_png(image: np.ndarray) -> bytes:
    """One 28x28 digit as a PNG, dark ink on white."""
    buffer = io.BytesIO()
    imsave(buffer, image, cmap="gray_r", format="png")
    return buffer.getvalue()


class DigitBrowser(widgets.VBox):
    """Browse digits with a slider: the image, its label, and the model's probabilities (when given).

    With a model, two buttons jump to the previous and next image the model gets wrong (the
    predictions for all images are computed at the first press).

    Attributes:
        slider: the index (set ``slider.value`` to move); as wide as the page allows.
        image: the digit (``ipywidgets.Image``).
        caption: label and prediction (``ipywidgets.HTML``).
        probs_image: the probability bars (``ipywidgets.Image``), empty without a model.
        previous_button, next_button: "previous mistake" / "next mistake" (None without a model).
    """

    PREDICT_BATCH = 1000  # images per forward pass when predicting every image

    def __init__(self, images: Any, labels: Any, model: torch.nn.Module | None = None,
                 collate_fn: Callable | None = None, device: str | torch.device = "cpu"):
        # uint8 pixels (0..255) become the protocol's [0, 1]; float images are taken as they are
        self.pixel_scale = 255.0 if _as_array(images).dtype.kind in "ui" else 1.0
        self.images, self.labels = _as_images(images), _as_array(labels)
        if len(self.images) != len(self.labels) or len(self.images) == 0:
            raise ValueError(f"need as many labels as images, and at least one: got {len(self.images)} images, "
                             f"{len(self.labels)} labels")
        self.model, self.collate_fn, self.device = model, collate_fn, resolve_device(device)
        self._mistakes: np.ndarray | None = None
        # full width: with 10,000 images every pixel of a short slider would skip dozens of them
        self.slider = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="index",
                                        continuous_update=False, layout=widgets.Layout(width="100%"))
        self.image = widgets.Image(format="png", width=168, height=168)
        self.caption = widgets.HTML()
        self.probs_image = widgets.Image(format="png", width=320)
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        rows: list[widgets.Widget] = [self.slider]
        self.previous_button = self.next_button = None
        if model is not None:
            self.previous_button = widgets.Button(description="previous mistake", icon="arrow-left")
            self.next_button = widgets.Button(description="next mistake", icon="arrow-right")
            self.previous_button.on_click(lambda _: self.go_to_mistake(-1))
            self.next_button.on_click(lambda _: self.go_to_mistake(+1))
            rows.append(widgets.HBox([self.previous_button, self.next_button]))
        body = [self.image, self.probs_image] if model is not None else [self.image]
        super().__init__([*rows, self.caption, widgets.HBox(body)], layout=widgets.Layout(width="100%"))
        self.show(0)

    def _batch(self, indices: Sequence[int]) -> dict:
        """The model's batch for some images, built with collate_fn (or as the protocol's dict), on the device."""
        samples = [(torch.as_tensor(self.images[i].reshape(-1) / self.pixel_scale, dtype=torch.float32),
                    int(self.labels[i])) for i in indices]
        if self.collate_fn is not None:
            batch = self.collate_fn(samples)
        else:
            batch = {"images": torch.stack([image for image, _ in samples]),
                     "labels": torch.tensor([label for _, label in samples])}
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    def _predict(self, indices: Sequence[int]) -> np.ndarray:
        """The model's probabilities (len(indices), C), through the protocol (eval mode, "probs")."""
        self.model.eval()
        with torch.no_grad():
            probs, _ = check_eval_output(self.model(self._batch(indices)), len(indices))
        return probs.float().cpu().numpy()

    def probabilities(self, index: int) -> np.ndarray:
        """The model's probabilities for one image."""
        return self._predict([index])[0]

    @property
    def mistakes(self) -> np.ndarray:
        """The indices of the images the model gets wrong, in order (computed once, on first use)."""
        if self.model is None:
            raise ValueError("no model was given: pass model=... to see its mistakes")
        if self._mistakes is None:
            preds = np.concatenate([self._predict(range(start, min(start + self.PREDICT_BATCH, len(self.images))))
                                    .argmax(axis=1) for start in range(0, len(self.images), self.PREDICT_BATCH)])
            self._mistakes = np.flatnonzero(preds != self.labels)
        return self._mistakes

    def go_to_mistake(self, direction: int) -> int | None:
        """Move the slider to the next (+1) or previous (-1) mistake, wrapping around; return its index.

        Returns None (and says so in the caption) when the model makes no mistake.
        """
        mistakes, here = self.mistakes, self.slider.value
        if len(mistakes) == 0:
            if "every image right" not in self.caption.value:
                self.caption.value += " &mdash; the model gets every image right"
            return None
        if direction > 0:
            after = mistakes[mistakes > here]
            target = int(after[0] if len(after) else mistakes[0])
        else:
            before = mistakes[mistakes < here]
            target = int(before[-1] if len(before) else mistakes[-1])
        self.slider.value = target
        return target

    def show(self, index: int) -> None:
        """Display the image at ``index`` (what moving the slider does)."""
        label = int(self.labels[index])
        self.image.value = digit_png(self.images[index])
        text = f"<b>#{index}</b>: label <b>{label}</b>"
        if self.model is not None:
            probs = self.probabilities(index)
            predicted = int(probs.argmax())
            color = to_hex(RIGHT if predicted == label else WRONG)  # as in the figures; legible on dark themes
            text += f', predicted <b style="color:{color}">{predicted}</b> ({probs[predicted]:.1%})'
            if self._mistakes is not None and len(self._mistakes):
                text += f" &middot; {len(self._mistakes):,} mistakes in {len(self.images):,} images"
            self.probs_image.value = figure_png(plot_probabilities(probs, label=label))
        self.caption.value = text


@not_drawn_while_grading
def digit_browser(images: Any, labels: Any, model: torch.nn.Module | None = None,
                  collate_fn: Callable | None = None, device: str | torch.device = "cpu") -> DigitBrowser:
    """A slider over the digits showing each image, its label and, with a model, its probabilities.

    Args:
        images: (N, 28, 28) or (N, 784), uint8 (0..255) or float (0..1).
        labels: (N,) true labels.
        model: a model following the protocol (eval mode returns "probs"), or None.
        collate_fn: builds the model's batch from [(float (784,), label)]; default: the protocol's dict.
        device: where the model runs.

    Returns:
        The widget (display it, or make it the cell's last expression).
    """
    return DigitBrowser(images, labels, model, collate_fn, device)


class LiveTrainingView:
    """The loss and accuracy curves, redrawn in place while ``fit`` runs, then shown once as a figure.

    Usage::

        view = LiveTrainingView()
        display(view.widget)          # or just `view` as the last expression of a cell
        history = fit(model, train_ds, val_ds, callbacks=[view])
        view.finish()                 # last expression: the final figure, in place of the live picture

    ``finish`` hides the live picture and returns the final Figure, so the cell shows the curves
    once, and the saved notebook keeps them as an ordinary image (widgets are not saved with it).
    Redraws are throttled to one per ``min_interval_s`` (plus one at every epoch end), so the
    view costs little training time.

    Attributes:
        widget: the status line and the live picture (``ipywidgets.VBox``).
        figure: the last Figure drawn (None before the first draw).
        redraws: how many times the picture was drawn.
    """

    def __init__(self, min_interval_s: float = 1.0):
        self.min_interval_s = min_interval_s
        self.image = empty_image(720)
        self.status = widgets.HTML("waiting for training to start")
        self.widget = widgets.VBox([self.status, self.image])
        self.figure: Figure | NotDrawn | None = None
        self.redraws = 0
        self._history: History | None = None
        self._last_draw = -float("inf")
        self._epochs_drawn = 0

    def __call__(self, history: History) -> None:
        epoch_ended = len(history.epochs) != self._epochs_drawn
        if not epoch_ended and time.perf_counter() - self._last_draw < self.min_interval_s:
            return
        self.draw(history)

    def draw(self, history: History) -> None:
        """Redraw now."""
        self._history = history
        self.figure = plot_history(history)
        show_png(self.image, figure_png(self.figure))
        self._last_draw, self._epochs_drawn = time.perf_counter(), len(history.epochs)
        self.redraws += 1
        self.status.value = html.escape(self._describe(history))

    def finish(self, history: History | None = None) -> Figure | NotDrawn:
        """The final figure, drawn from ``history`` (default: the last one seen); the live picture is hidden
        (while grading, ``NotDrawn``: see ``helpers.grading_mode``).

        Make it the last expression of the training cell: the notebook shows the figure once, also
        when the view never drew (e.g. no callback while grading, then pass the History).

        Raises:
            ValueError: no history given and none seen.
        """
        history = history if history is not None else self._history
        if history is None:
            raise ValueError("nothing to show yet: pass the History that fit returned, or pass this view to "
                             "fit(..., callbacks=[view]) first")
        self._history, self.figure = history, plot_history(history)
        self.image.layout.display = "none"
        self.status.value = html.escape("finished: " + self._describe(history))
        return self.figure

    @staticmethod
    def _describe(history: History) -> str:
        planned = history.config.get("epochs", "?")
        text = f"epoch {len(history.epochs)}/{planned}, step {len(history.step_loss)}"
        if history.step_loss:
            text += f", loss {history.step_loss[-1]:.4f}"
        if history.epochs and history.epochs[-1].get("val_acc") is not None:
            text += f", validation accuracy {100 * history.epochs[-1]['val_acc']:.2f}%"
        return text + f", {history.wall_time_s:.1f} s"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


# The explorer's table: (heading, the run's key, format); a None value shows as "n/a".
RUN_COLUMNS = (
    ("N_HIDDEN", "size", "{}"),
    ("parameters", "params", "{:,}"),
    ("train loss", "train_loss", "{:.4f}"),
    ("val. loss", "val_loss", "{:.4f}"),
    ("loss gap<br>(val. &minus; train)", "loss_gap", "{:+.4f}"),
    ("train acc.", "train_acc", "{:.2%}"),
    ("val. acc.", "val_acc", "{:.2%}"),
    ("acc. gap<br>(train &minus; val.)", "acc_gap", "{:+.2%}"),
    ("time", "seconds", "{:.1f} s"),
)


def run_summary(size: int, model: torch.nn.Module, history: History) -> dict[str, Any]:
    """One row of the explorer: the run's last epoch, its gaps, parameters and time."""
    last = history.epochs[-1]
    gap = lambda a, b: None if a is None or b is None else a - b  # noqa: E731
    return dict(
        size=size,
        params=sum(p.numel() for p in model.parameters()),
        train_loss=last.get("train_loss"), val_loss=last.get("val_loss"),
        loss_gap=gap(last.get("val_loss"), last.get("train_loss")),
        train_acc=last.get("train_acc"), val_acc=last.get("val_acc"),
        acc_gap=gap(last.get("train_acc"), last.get("val_acc")),
        seconds=history.wall_time_s,
    )


class HiddenSizeExplorer(widgets.VBox):
    """Pick N_HIDDEN, train, compare: every run is kept, in a table and as overlaid curves.

    Attributes:
        train_buttons: {size: the button that trains a fresh model of that size} (``.click()`` from
            code does what pressing it does); disabled while a run trains.
        status: what the explorer is doing ("training N_HIDDEN=128 (run 2) ...").
        live: the LiveTrainingView of the current run (its picture is hidden once the run ends).
        runs: one dict per finished run, in order (the table's columns, see ``RUN_COLUMNS``);
            histories: the History of each run, in the same order.
        table: the runs (``ipywidgets.HTML``).
        summary_image: the curves of all runs overlaid (``ipywidgets.Image``).
    """

    def __init__(self, train_data: Any, val_data: Any, collate_fn: Callable | None,
                 model_factory: Callable[[int], torch.nn.Module], sizes: Sequence[int] = (8, 32, 128, 512),
                 epochs: int = 3, **fit_kwargs: Any):
        self.train_data, self.val_data, self.collate_fn = train_data, val_data, collate_fn
        self.model_factory, self.epochs, self.fit_kwargs = model_factory, epochs, fit_kwargs
        self.runs: list[dict[str, Any]] = []
        self.histories: list[History] = []
        # one button per size: a click says which size to train, so no separate picker can lag behind it
        self.train_buttons = {size: widgets.Button(description=f"train N_HIDDEN={size}", button_style="primary",
                                                   tooltip=f"train a fresh model with {size} hidden units for "
                                                           f"{epochs} epoch(s)", layout=widgets.Layout(width="auto"))
                              for size in sizes}
        for size, button in self.train_buttons.items():
            button.on_click(lambda _, size=size: self.run(size))
        self.status = widgets.HTML("no run yet: press a train button")
        self.live = LiveTrainingView()
        self.table = widgets.HTML()
        self.summary_image = empty_image(720)
        super().__init__([widgets.HBox(list(self.train_buttons.values())), self.status, self.live.widget,
                          self.table, self.summary_image])

    def run(self, size: int) -> History:
        """Train a fresh model_factory(size) and add it to the runs."""
        self._enable_buttons(False)
        self.status.value = f"<b>training N_HIDDEN={size}</b> (run {len(self.runs) + 1}) &hellip;"
        try:
            model = self.model_factory(size)
            history = fit(model, self.train_data, self.val_data, collate_fn=self.collate_fn, epochs=self.epochs,
                          progress=False, callbacks=[self.live], **self.fit_kwargs)
        except BaseException:
            self.status.value = f"run {len(self.runs) + 1} (N_HIDDEN={size}) failed: see the error below"
            raise
        finally:
            self._enable_buttons(True)
        self.live.finish(history)
        self.runs.append(run_summary(size, model, history))
        self.histories.append(history)
        self.status.value = (f"run {len(self.runs)} (N_HIDDEN={size}) done in {history.wall_time_s:.1f} s; "
                             "train another N_HIDDEN to compare")
        self._show_runs()
        return history

    def _enable_buttons(self, enabled: bool) -> None:
        for button in self.train_buttons.values():
            button.disabled = not enabled

    def _show_runs(self) -> None:
        cell = '<{0} style="padding:2px 10px;text-align:right;border-bottom:1px solid #8884">{1}</{0}>'
        head = "".join(cell.format("th", heading) for heading in ["run", *(h for h, _, _ in RUN_COLUMNS)])
        rows = "".join(
            "<tr>" + cell.format("td", number) + "".join(
                cell.format("td", "n/a" if run[key] is None else form.format(run[key])) for _, key, form in RUN_COLUMNS
            ) + "</tr>"
            for number, run in enumerate(self.runs, start=1)
        )
        self.table.value = (f'<table style="border-collapse:collapse"><tr>{head}</tr>{rows}</table>'
                            "<small>Train loss and accuracy: averaged over the last epoch's batches while it "
                            "trained; validation: measured after it.</small>")
        labels = [f"run {i + 1}: N_HIDDEN={run['size']}" for i, run in enumerate(self.runs)]
        show_png(self.summary_image, figure_png(plot_runs(dict(zip(labels, self.histories)))))


@not_drawn_while_grading
def hidden_size_explorer(train_data: Any, val_data: Any, collate_fn: Callable | None,
                         model_factory: Callable[[int], torch.nn.Module], sizes: Sequence[int] = (8, 32, 128, 512),
                         epochs: int = 3, **fit_kwargs: Any) -> HiddenSizeExplorer:
    """A widget to train the student's model with several N_HIDDEN and compare the runs.

    Every run is kept: a table (N_HIDDEN, parameters, train and validation loss and accuracy, the
    gaps between them, time) and the curves of all runs overlaid, one colour per run.

    Args:
        train_data, val_data, collate_fn: as for ``fit``.
        model_factory: ``model_factory(n_hidden)`` builds a fresh model, e.g. ``MNISTClassifier``.
        sizes: the N_HIDDEN choices.
        epochs: epochs per run (keep it small: every press trains a model).
        **fit_kwargs: passed to ``fit`` (batch_size, lr, seed, device, ...).

    Returns:
        The widget; ``.run(size)`` trains from code.
    """
    return HiddenSizeExplorer(train_data, val_data, collate_fn, model_factory, sizes, epochs, **fit_kwargs)
