"""While nbgrader runs the lab (NBGRADER_EXECUTION set) the helpers draw nothing; otherwise they draw."""
import nbformat
import numpy as np
import pytest
from matplotlib.figure import Figure
from nbclient import NotebookClient

from helpers import plots, widgets
from helpers.grading_mode import NotDrawn
from helpers.training import History
from student_style import MNISTClassifier

HISTORY = History(step_loss=[2.3, 1.0, 0.7], epochs=[dict(epoch=1, train_loss=1.3, val_loss=0.9, val_acc=0.7)],
                  wall_time_s=0.5, config=dict(epochs=1, steps_per_epoch=3))
IMAGES = (np.arange(12 * 28 * 28).reshape(12, 28, 28) % 256).astype(np.uint8)
LABELS = np.arange(12) % 10
PROBS = np.full((12, 10), 0.1)

# every drawing entry point of the helpers the lab calls, with arguments it accepts
DRAWINGS = {
    "plot_samples": lambda: plots.plot_samples(IMAGES, LABELS, n=4),
    "plot_history": lambda: plots.plot_history(HISTORY),
    "plot_runs": lambda: plots.plot_runs({"run 1": HISTORY}),
    "plot_curves": lambda: plots.plot_curves({"loss": [2.0, 1.0]}),
    "plot_confusion": lambda: plots.plot_confusion(np.eye(10, dtype=int)),
    "plot_mistakes": lambda: plots.plot_mistakes(IMAGES, LABELS, PROBS, n=4),
    "plot_probabilities": lambda: plots.plot_probabilities(PROBS[0], label=3),
    "plot_first_layer": lambda: plots.plot_first_layer(MNISTClassifier(8), n=4),
    "LiveTrainingView.finish": lambda: widgets.LiveTrainingView().finish(HISTORY),
}
WIDGETS = {
    "digit_browser": lambda: widgets.digit_browser(IMAGES, LABELS),
    "hidden_size_explorer": lambda: widgets.hidden_size_explorer(None, None, None, MNISTClassifier, sizes=(8,)),
}


@pytest.mark.parametrize("name", DRAWINGS)
def test_each_plot_draws_for_a_student_and_not_while_graded(name, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert isinstance(DRAWINGS[name](), Figure)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    placeholder = DRAWINGS[name]()
    assert isinstance(placeholder, NotDrawn) and "not drawn" in repr(placeholder)


@pytest.mark.parametrize("name", WIDGETS)
def test_each_widget_is_built_for_a_student_and_not_while_graded(name, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not isinstance(WIDGETS[name](), NotDrawn)
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert isinstance(WIDGETS[name](), NotDrawn)


def test_a_live_view_driven_while_graded_keeps_its_picture_hidden(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    view = widgets.LiveTrainingView()
    view.draw(HISTORY)
    assert view.image.layout.display == "none" and not bytes(view.image.value)
    browser = widgets.DigitBrowser(IMAGES, LABELS, model=MNISTClassifier(8).eval())
    assert not bytes(browser.probs_image.value) and bytes(browser.image.value)  # the digit, no bars


def first_layer_outputs(env_value, tmp_path, monkeypatch):
    """The outputs of a notebook cell that draws the first layer, run in a real kernel."""
    if env_value is None:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    else:
        monkeypatch.setenv("NBGRADER_EXECUTION", env_value)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import torch\nfrom helpers import plots\n"
        "plots.plot_first_layer(torch.nn.Sequential(torch.nn.Linear(784, 8)), n=4)")])
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb.cells[0].outputs


def test_a_graded_notebook_shows_a_line_of_text_where_a_student_sees_the_figure(tmp_path, monkeypatch):
    drawn = first_layer_outputs(None, tmp_path, monkeypatch)
    assert [o["output_type"] for o in drawn] == ["execute_result"] and "image/png" in drawn[0]["data"]
    graded = first_layer_outputs("autograde", tmp_path, monkeypatch)
    assert [o["output_type"] for o in graded] == ["execute_result"] and "image/png" not in graded[0]["data"]
    assert "plot_first_layer: not drawn" in graded[0]["data"]["text/plain"]
