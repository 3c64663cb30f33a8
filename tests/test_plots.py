"""Every plot returns a matplotlib Figure with the right axes and images, headless (Agg), savable."""
import io

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers.plots import plot_confusion, plot_history, plot_mistakes, plot_probabilities, plot_samples
from helpers.training import History
from student_style import mnist_subset

matplotlib.use("Agg")


def n_images(fig):
    return sum(len(ax.images) for ax in fig.axes)


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
    history = History(
        step_loss=[2.0, 1.5, 1.0, 0.8, 0.6, 0.5],
        epochs=[dict(epoch=e, train_loss=l, train_acc=a, val_loss=l + 0.1, val_acc=a - 0.02, seconds=1.0)
                for e, l, a in ((1, 1.4, 0.8), (2, 0.6, 0.9))],
        config=dict(steps_per_epoch=3),
    )
    fig = plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert len(fig.axes) == 2 and n_images(fig) == 0
    assert len(loss_ax.lines) == 3 and len(acc_ax.lines) == 2  # steps, train, val | train, val
    np.testing.assert_allclose(acc_ax.lines[1].get_ydata(), [78, 88])
    assert len(plot_history(history.to_dict()).axes) == 2  # the dict form works too
    assert saves(fig)


def test_plot_confusion_is_one_image_with_counts():
    confusion = np.diag(np.arange(1, 11))
    confusion[3, 5] = 7
    fig = plot_confusion(confusion)
    (ax,) = fig.axes
    assert n_images(fig) == 1
    np.testing.assert_array_equal(ax.images[0].get_array(), confusion)
    assert {t.get_text() for t in ax.texts} >= {"7", "10"} and len(ax.texts) == 11
    with pytest.raises(ValueError, match="square"):
        plot_confusion(np.zeros((3, 4)))


def test_plot_mistakes_shows_the_most_confident_ones_first(digits):
    images, labels = digits
    probs = np.full((len(labels), 10), 0.01)
    probs[np.arange(len(labels)), labels] = 0.91  # all right ...
    wrong = {7: 0.6, 11: 0.95, 40: 0.8}  # ... except three, with these confidences
    for i, p in wrong.items():
        probs[i] = (1 - p) / 9
        probs[i, (labels[i] + 1) % 10] = p
    fig = plot_mistakes(images, labels, probs, n=12)
    assert len(fig.axes) == 3 and n_images(fig) == 3
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["#11", "#40", "#7"]
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


def test_a_returned_figure_shows_as_an_image_in_a_notebook(tmp_path):
    """Figures are made without pyplot; a kernel must still render them as PNG, not `<Figure ...>` text."""
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import numpy as np\nfrom helpers.plots import plot_samples\n"
        "plot_samples(np.zeros((4, 28, 28), np.uint8), np.arange(4))"
    )]
    env_dirs = {k: str(tmp_path / k) for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                              "IPYTHONDIR", "MPLCONFIGDIR")}
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
