"""Every plot returns a matplotlib Figure with the right axes and images, headless (Agg), savable."""
import io

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import torch
from torch import nn

from helpers.plots import (plot_confusion, plot_curves, plot_first_layer, plot_history, plot_mistakes,
                           plot_probabilities, plot_runs, plot_samples)
from helpers.training import History
from student_style import MNISTClassifier, mnist_subset

matplotlib.use("Agg")


def n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


def y_tick_labels(ax):
    """The y tick labels (major and minor) as drawn, empty ones left out."""
    ax.figure.draw_without_rendering()
    return [t.get_text() for t in ax.yaxis.get_ticklabels(which="both") if t.get_text()]


def is_plain_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return "e" not in text.lower()


def history_of(losses, accuracies, steps_per_epoch=3):
    """A History with per-step losses and one epoch record per (loss, accuracy) pair."""
    return History(
        step_loss=list(np.geomspace(2.3, 0.15, steps_per_epoch * len(losses))),
        epochs=[dict(epoch=e, train_loss=l, train_acc=a, val_loss=l + 0.1, val_acc=a - 0.02, seconds=1.0)
                for e, (l, a) in enumerate(zip(losses, accuracies), start=1)],
        config=dict(steps_per_epoch=steps_per_epoch),
    )


def saves(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def digits(real_mnist_root):
    return mnist_subset("test", 200)


def test_plot_samples_labels_and_marks_wrong_predictions(digits):
    images, labels = digits
    fig = plot_samples(images, labels, n=16, ncols=8)
    assert isinstance(fig, Figure) and len(fig.axes) == 16 and n_images(fig) == 16
    assert [ax.get_title() for ax in fig.axes] == [str(l) for l in labels[:16]]
    preds = labels.copy()
    preds[[2, 5]] = (labels[[2, 5]] + 1) % 10
    fig = plot_samples(images.reshape(-1, 784) / 255.0, labels, preds, n=10, ncols=5)  # flat float input too
    assert len(fig.axes) == 10 and n_images(fig) == 10
    red = [i for i, ax in enumerate(fig.axes) if ax.title.get_color() == "tab:red"]
    assert red == [2, 5] and f"true {labels[2]}" in fig.axes[2].get_title()
    assert saves(fig)


def test_plot_history_draws_loss_and_accuracy_curves():
    history = history_of([1.4, 0.6], [0.8, 0.9])
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert len(fig.axes) == 2 and n_images(fig) == 0
    assert len(loss_ax.lines) == 3 and len(acc_ax.lines) == 2  # steps, train, val | train, val
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [78, 88])
    assert acc_ax.get_ylabel() == "accuracy (%)"
    assert len(plot_history(history.to_dict()).axes) == 2  # the dict form works too
    without_train_acc = history.to_dict()
    for record in without_train_acc["epochs"]:
        record["train_acc"] = None
    loss_ax, acc_ax = plot_history(without_train_acc).axes
    assert len(acc_ax.lines) == 1 and acc_ax.lines[0].get_color() == loss_ax.lines[2].get_color()  # validation
    assert saves(fig)


def test_the_log_loss_axis_is_labelled_with_plain_numbers():
    loss_ax = plot_history(history_of([1.4, 0.6], [0.8, 0.9])).axes[0]
    assert loss_ax.get_yscale() == "log"
    labels = y_tick_labels(loss_ax)
    assert len(labels) >= 3 and all(is_plain_number(t) for t in labels), labels  # not "2x10^0" or "6e-01"
    assert {"0.2", "1", "2"} <= set(labels)


def test_an_empty_accuracy_panel_reads_in_percent():
    """Before the first epoch ends there is no accuracy yet: the axis still spans 0-100 %, and says why."""
    fig = plot_history(History(step_loss=[2.3, 2.2, 2.0], config=dict(epochs=3)))
    acc_ax = fig.axes[1]
    assert not acc_ax.lines and acc_ax.get_ylabel() == "accuracy (%)"
    assert acc_ax.get_ylim() == (0, 100) and max(float(t) for t in y_tick_labels(acc_ax)) == 100
    assert "end of each epoch" in acc_ax.texts[0].get_text()
    assert saves(fig)


def test_plot_runs_overlays_every_run_in_its_own_colour():
    runs = {"N_HIDDEN=8": history_of([1.4, 0.9], [0.6, 0.7]), "N_HIDDEN=128": history_of([0.9, 0.3], [0.9, 0.95]),
            "N_HIDDEN=512": history_of([0.8, 0.2], [0.92, 0.97]).to_dict()}
    fig = plot_runs(runs)
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 3 * 2 and len(acc_ax.lines) == 3 * 2  # per run: steps + val | train + val
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == list(runs)
    colours = [matplotlib.colors.to_hex(line.get_color()) for line in loss_ax.lines]
    assert len(set(colours)) == 3 and colours[0] == colours[1] != colours[2]  # a run's lines share a colour
    np.testing.assert_allclose(acc_ax.lines[5].get_ydata(), [90, 95])  # the last run's validation accuracy
    assert all(is_plain_number(t) for t in y_tick_labels(loss_ax))
    assert saves(fig)
    with pytest.raises(ValueError, match="no runs"):
        plot_runs({})


def test_plot_curves_draws_one_labelled_line_per_curve():
    curves = {0.01: [2.3, 2.0, 1.5, 1.2], 0.1: [2.3, 1.0, 0.5, 0.3], 1.0: [2.3, float("nan"), float("inf"), 50.0]}
    fig = plot_curves(curves, xlabel="step", ylabel="loss", title="learning rates")
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["0.01", "0.1", "1.0"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [2.3, 1.0, 0.5, 0.3])
    assert np.isnan(ax.lines[2].get_ydata()[2])  # inf leaves a gap instead of stretching the axis
    assert ax.get_yscale() == "log" and all(is_plain_number(t) for t in y_tick_labels(ax))
    assert plot_curves({"a": [1.0, -1.0]}).axes[0].get_yscale() == "linear"  # a log axis cannot show -1
    with pytest.raises(ValueError, match="no curves"):
        plot_curves({})


def test_plot_confusion_is_one_image_with_counts():
    confusion = np.diag(np.arange(1, 11))
    confusion[3, 5] = 7
    fig = plot_confusion(confusion)
    (ax,) = fig.axes
    assert n_images(fig) == 1
    np.testing.assert_array_equal(ax.images[0].get_array(), confusion)
    assert {t.get_text() for t in ax.texts} >= {"7", "10"} and len(ax.texts) == 11
    assert min(t.get_fontsize() for t in ax.texts) >= 10
    ink = {t.get_text(): t.get_color() for t in ax.texts}
    assert ink["10"] == "white" and ink["1"] == "black"  # on the darkest and on the lightest blue
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros((3, 4)))


def test_plot_mistakes_shows_the_most_confident_ones_first(digits):
    images, labels = digits
    probs = np.full((len(labels), 10), 0.01)
    probs[np.arange(len(labels)), labels] = 0.91  # all right ...
    wrong = {7: 0.6, 11: 0.95, 40: 0.9996}  # ... except three, with these confidences
    for i, p in wrong.items():
        probs[i] = (1 - p) / 9
        probs[i, (labels[i] + 1) % 10] = p
    fig = plot_mistakes(images, labels, probs, n=12)
    assert len(fig.axes) == 3 and n_images(fig) == 3
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["#40", "#11", "#7"]
    assert fig.axes[1].get_title() == f"#11: predicted {(labels[11] + 1) % 10} (95%)\ntrue {labels[11]}"
    assert "(99.9%)" in fig.axes[0].get_title()  # not rounded up to a certainty it is not
    caption = fig.get_suptitle()
    assert "3 most confident of 3 mistakes" in caption and all(w in caption for w in ("index", "predicted", "true"))
    assert len(plot_mistakes(images, labels, probs, n=2).axes) == 2
    none = plot_mistakes(images[:5], labels[:5], probs[:5])
    assert len(none.axes) == 1 and n_images(none) == 0 and none.axes[0].texts[0].get_text() == "no mistakes"


def test_plot_probabilities_has_ten_bars_and_marks_a_wrong_prediction():
    probs = np.array([0.01, 0.02, 0.05, 0.6, 0.02, 0.2, 0.02, 0.03, 0.03, 0.02])
    fig = plot_probabilities(probs, label=5)
    (ax,) = fig.axes
    bars = ax.patches
    assert len(bars) == 10 and n_images(fig) == 0
    np.testing.assert_allclose([b.get_height() for b in bars], probs)
    assert bars[3].get_facecolor() == matplotlib.colors.to_rgba("tab:red")
    assert "predicted 3" in ax.get_title() and "true 5" in ax.get_title()
    right = plot_probabilities(probs, label=3).axes[0].patches[3]
    assert right.get_facecolor() == matplotlib.colors.to_rgba("tab:green")


def test_plot_first_layer_draws_each_hidden_units_weights_as_an_image():
    torch.manual_seed(0)
    model = MNISTClassifier(20)
    fig = plot_first_layer(model, n=12, ncols=6)
    digit_axes = [ax for ax in fig.axes if ax.images]
    assert n_images(fig) == 12 and len(digit_axes) == 12 and len(fig.axes) == 13  # 12 units and a colour bar
    weight = model.fc1.weight.detach().numpy()
    np.testing.assert_allclose(digit_axes[5].images[0].get_array(), weight[5].reshape(28, 28))
    image = digit_axes[0].images[0]
    assert image.get_cmap().name == "RdBu_r" and image.norm.vcenter == 0 and image.norm.vmin == -image.norm.vmax
    assert "784 input weights" in fig.get_suptitle() and digit_axes[5].get_title() == "unit 5"
    assert saves(fig)

    sequential = nn.Sequential(nn.Linear(784, 6), nn.ReLU(), nn.Linear(6, 10))
    assert n_images(plot_first_layer(sequential, n=50)) == 6  # n is capped at the number of units
    from_tensor = plot_first_layer(sequential[0].weight, n=3)
    np.testing.assert_allclose(from_tensor.axes[2].images[0].get_array(),
                               sequential[0].weight.detach()[2].reshape(28, 28).numpy())


@pytest.mark.parametrize("bad, message", [
    (nn.Sequential(nn.Flatten(), nn.ReLU()), "has no nn.Linear"),
    (nn.Sequential(nn.Linear(100, 784), nn.Linear(784, 10)), "takes 100 inputs"),
    (torch.zeros(10, 100), r"shape \(hidden units, 784\)"),
    (np.zeros(784), r"got shape \(784,\)"),
])
def test_plot_first_layer_explains_what_it_cannot_draw(bad, message):
    with pytest.raises(ValueError, match=message):
        plot_first_layer(bad)


def test_a_returned_figure_shows_as_an_image_in_a_notebook(tmp_path):
    """Figures are made without pyplot; a kernel must still render them as PNG, not `<Figure ...>` text."""
    import os

    import nbformat
    from nbclient import NotebookClient

    from mnist_grader.jupyter_env import private_dirs

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import numpy as np\nfrom helpers.plots import plot_samples\n"
        "plot_samples(np.zeros((4, 28, 28), np.uint8), np.arange(4))"
    )]
    env_dirs = private_dirs(tmp_path)
    old = {k: os.environ.get(k) for k in [*env_dirs, "MPLBACKEND"]}
    os.environ.update(env_dirs)
    os.environ.pop("MPLBACKEND", None)  # as in JupyterLab: the kernel picks its default backend
    try:
        NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["execute_result"]
    assert "image/png" in outputs[0].data, outputs[0].data.get("text/plain")
