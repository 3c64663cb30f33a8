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
from matplotlib.figure import Figure
from matplotlib.image import imsave

from .batching import resolve_device
from .plots import _as_array, _as_images, plot_history, plot_probabilities
from .protocol import check_eval_output
from .training import History, fit

__all__ = ["digit_browser", "DigitBrowser", "LiveTrainingView", "hidden_size_explorer", "HiddenSizeExplorer"]


def figure_png(fig: Figure, dpi: int = 72) -> bytes:
    """The figure rendered to PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def empty_image(width: int) -> widgets.Image:
    """An Image widget kept hidden until it gets a picture (an empty one shows a broken-image icon)."""
    return widgets.Image(format="png", width=width, layout=widgets.Layout(display="none"))


def show_png(image: widgets.Image, png: bytes) -> None:
    """Put a picture into an Image widget and make it visible."""
    image.value = png
    image.layout.display = None


def digit_png(image: np.ndarray) -> bytes:
    """One 28x28 digit as a PNG, dark ink on white."""
    buffer = io.BytesIO()
    imsave(buffer, image, cmap="gray_r", format="png")
    return buffer.getvalue()


class DigitBrowser(widgets.VBox):
    """Browse digits with a slider: the image, its label, and the model's probabilities (when given).

    Attributes:
        slider: the index (set ``slider.value`` to move).
        image: the digit (``ipywidgets.Image``).
        caption: label and prediction (``ipywidgets.HTML``).
        probs_image: the probability bars (``ipywidgets.Image``), empty without a model.
    """

    def __init__(self, images: Any, labels: Any, model: torch.nn.Module | None = None,
                 collate_fn: Callable | None = None, device: str | torch.device = "cpu"):
        # uint8 pixels (0..255) become the protocol's [0, 1]; float images are taken as they are
        self.pixel_scale = 255.0 if _as_array(images).dtype.kind in "ui" else 1.0
        self.images, self.labels = _as_images(images), _as_array(labels)
        if len(self.images) != len(self.labels) or len(self.images) == 0:
            raise ValueError(f"need as many labels as images, and at least one: got {len(self.images)} images, "
                             f"{len(self.labels)} labels")
        self.model, self.collate_fn, self.device = model, collate_fn, resolve_device(device)
        self.slider = widgets.IntSlider(value=0, min=0, max=len(self.images) - 1, description="index",
                                        continuous_update=False, layout=widgets.Layout(width="420px"))
        self.image = widgets.Image(format="png", width=168, height=168)
        self.caption = widgets.HTML()
        self.probs_image = widgets.Image(format="png", width=320)
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        body = [self.image, self.probs_image] if model is not None else [self.image]
        super().__init__([self.slider, self.caption, widgets.HBox(body)])
        self.show(0)

    def probabilities(self, index: int) -> np.ndarray:
        """The model's probabilities for one image, through the protocol (eval mode, "probs")."""
        pixels = self.images[index].reshape(-1) / self.pixel_scale
        sample = (torch.as_tensor(pixels, dtype=torch.float32), int(self.labels[index]))
        if self.collate_fn is not None:
            batch = self.collate_fn([sample])
        else:
            batch = {"images": sample[0][None], "labels": torch.tensor([sample[1]])}
        batch = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        self.model.eval()
        with torch.no_grad():
            probs, _ = check_eval_output(self.model(batch), 1)
        return probs[0].float().cpu().numpy()

    def show(self, index: int) -> None:
        """Display the image at ``index`` (what moving the slider does)."""
        label = int(self.labels[index])
        self.image.value = digit_png(self.images[index])
        text = f"<b>#{index}</b>: label <b>{label}</b>"
        if self.model is not None:
            probs = self.probabilities(index)
            predicted = int(probs.argmax())
            color = "green" if predicted == label else "red"
            text += f', predicted <b style="color:{color}">{predicted}</b> ({probs[predicted]:.1%})'
            self.probs_image.value = figure_png(plot_probabilities(probs, label=label))
        self.caption.value = text


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
    """The loss and accuracy curves, redrawn in place while ``fit`` runs.

    Usage::

        view = LiveTrainingView()
        display(view.widget)          # or just `view` as the last expression of a cell
        history = fit(model, train_ds, val_ds, callbacks=[view])

    Redraws are throttled to one per ``min_interval_s`` (plus one at every epoch end), so the
    view costs little training time.
    """

    def __init__(self, min_interval_s: float = 1.0):
        self.min_interval_s = min_interval_s
        self.image = empty_image(720)
        self.status = widgets.HTML("waiting for training to start")
        self.widget = widgets.VBox([self.status, self.image])
        self.redraws = 0
        self._last_draw = -float("inf")
        self._epochs_drawn = 0

    def __call__(self, history: History) -> None:
        epoch_ended = len(history.epochs) != self._epochs_drawn
        if not epoch_ended and time.perf_counter() - self._last_draw < self.min_interval_s:
            return
        self.draw(history)

    def draw(self, history: History) -> None:
        """Redraw now."""
        show_png(self.image, figure_png(plot_history(history)))
        self._last_draw, self._epochs_drawn = time.perf_counter(), len(history.epochs)
        self.redraws += 1
        planned = history.config.get("epochs", "?")
        text = f"epoch {len(history.epochs)}/{planned}, step {len(history.step_loss)}"
        if history.step_loss:
            text += f", loss {history.step_loss[-1]:.4f}"
        if history.epochs and history.epochs[-1].get("val_acc") is not None:
            text += f", validation accuracy {100 * history.epochs[-1]['val_acc']:.2f}%"
        self.status.value = html.escape(text + f", {history.wall_time_s:.1f} s")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class HiddenSizeExplorer(widgets.VBox):
    """Pick N_HIDDEN, train, compare: a table and a plot of validation accuracy against the size.

    Attributes:
        size_picker: the N_HIDDEN choice (``ipywidgets.ToggleButtons``).
        train_button: trains the picked size (``train_button.click()`` does it from code too).
        live: the LiveTrainingView of the current run.
        table: the results (``ipywidgets.HTML``); results: {size: dict(params, val_acc, seconds)}.
        summary_image: validation accuracy against the size (``ipywidgets.Image``).
    """

    def __init__(self, train_data: Any, val_data: Any, collate_fn: Callable | None,
                 model_factory: Callable[[int], torch.nn.Module], sizes: Sequence[int] = (8, 32, 128, 512),
                 epochs: int = 3, **fit_kwargs: Any):
        self.train_data, self.val_data, self.collate_fn = train_data, val_data, collate_fn
        self.model_factory, self.epochs, self.fit_kwargs = model_factory, epochs, fit_kwargs
        self.results: dict[int, dict[str, float]] = {}
        self.size_picker = widgets.ToggleButtons(options=list(sizes), value=sizes[0], description="N_HIDDEN")
        self.train_button = widgets.Button(description=f"train {epochs} epoch(s)", button_style="primary")
        self.train_button.on_click(lambda _: self.run(self.size_picker.value))
        self.live = LiveTrainingView()
        self.table = widgets.HTML("no run yet: pick N_HIDDEN and press train")
        self.summary_image = empty_image(360)
        super().__init__([widgets.HBox([self.size_picker, self.train_button]), self.live.widget,
                          widgets.HBox([self.table, self.summary_image])])

    def run(self, size: int) -> History:
        """Train a fresh model_factory(size) and add it to the results."""
        self.train_button.disabled = True
        try:
            model = self.model_factory(size)
            history = fit(model, self.train_data, self.val_data, collate_fn=self.collate_fn, epochs=self.epochs,
                          progress=False, callbacks=[self.live], **self.fit_kwargs)
        finally:
            self.train_button.disabled = False
        self.results[size] = dict(
            params=sum(p.numel() for p in model.parameters()),
            val_acc=history.epochs[-1]["val_acc"],
            seconds=history.wall_time_s,
        )
        self._show_results()
        return history

    def _show_results(self) -> None:
        rows = "".join(
            f"<tr><td>{size}</td><td>{r['params']:,}</td><td>{_percent(r['val_acc'])}</td><td>{r['seconds']:.1f} s</td></tr>"
            for size, r in sorted(self.results.items())
        )
        self.table.value = ("<table><tr><th>N_HIDDEN</th><th>parameters</th><th>val. accuracy</th><th>time</th></tr>"
                            f"{rows}</table>")
        sizes = sorted(s for s, r in self.results.items() if r["val_acc"] is not None)
        fig = Figure(figsize=(4, 2.8), layout="constrained")
        ax = fig.subplots()
        ax.plot(sizes, [100 * self.results[s]["val_acc"] for s in sizes], "o-")
        ax.set(xscale="log", xlabel="N_HIDDEN", ylabel="validation accuracy (%)")
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.grid(alpha=0.3)
        show_png(self.summary_image, figure_png(fig))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def hidden_size_explorer(train_data: Any, val_data: Any, collate_fn: Callable | None,
                         model_factory: Callable[[int], torch.nn.Module], sizes: Sequence[int] = (8, 32, 128, 512),
                         epochs: int = 3, **fit_kwargs: Any) -> HiddenSizeExplorer:
    """A widget to train the student's model with several N_HIDDEN and compare validation accuracy.

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
