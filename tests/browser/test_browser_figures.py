"""The lab's figures and widgets as a student sees them, in JupyterLab's light and dark themes.

A small notebook trains a student-style model on a slice of MNIST and shows every figure and
widget of the helpers; the test runs it in the browser, uses the widgets with the mouse, checks
what is on the page, and leaves one screenshot per figure and theme in build/screenshots/ to look at.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from matplotlib.colors import to_hex
from playwright.sync_api import expect

from helpers.plots import WRONG
from jupyterlab_ui import (FIGURE_AS_TEXT, WIDGET_AS_TEXT, cell_with_source, cells_showing, close_and_shut_down,
                           menu, open_lab, restart_and_run_all, stderr_outputs)

TESTS = Path(__file__).resolve().parents[1]
WAIT_MS = 60_000
CELLS = {
    "setup": f"""import sys
sys.path.insert(0, {str(TESTS)!r})
from helpers import evaluation, plots, training, widgets
from student_style import MNISTClassifier, MNISTDataset, datasets, mnist_subset
train_set, val_set = datasets(3000, 1000)
test_images, test_labels = mnist_subset("test", 1000)
test_set = MNISTDataset(test_images, test_labels)""",
    "training": """live_view = widgets.LiveTrainingView()
display(live_view.widget)
training.seed_everything(0)
model = MNISTClassifier(32)
history = training.fit(model, train_set, val_set, epochs=3, lr=1e-2, progress=False, callbacks=[live_view])
live_view.finish()""",
    "first_layer": "plots.plot_first_layer(model, n=16)",
    "confusion": """result = evaluation.evaluate(model, test_set)
plots.plot_confusion(result.confusion)""",
    "mistakes": "plots.plot_mistakes(test_images, test_labels, result.probs)",
    "curves": 'plots.plot_curves({"this run": history.step_loss}, title="training loss of each step")',
    "browser": "widgets.digit_browser(test_images, test_labels, model=model, collate_fn=test_set.collate_func)",
    "explorer": "widgets.hidden_size_explorer(train_set, val_set, None, MNISTClassifier, sizes=(8, 64), epochs=2, lr=1e-2)",
}


@pytest.fixture
def gallery(course) -> Path:
    """The figures notebook, written into the course folder that JupyterLab serves."""
    path = course / "figures_gallery.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, path)
    return path


def _cell(page, name):
    return cell_with_source(page, CELLS[name].splitlines()[0])


def _shoot_cells(page, theme: str) -> None:
    for name in CELLS:
        if name == "setup":
            continue
        cell = _cell(page, name)
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(page.shot.folder / f"{theme}-{name}.png"))


def test_figures_and_widgets_in_light_and_dark_themes(page, lab, course, gallery):
    open_lab(page, lab, gallery.name)
    restart_and_run_all(page)
    problems = []
    if red := stderr_outputs(page).all_text_contents():
        problems.append("red output boxes:\n" + "\n---\n".join(t[-1500:] for t in red))
    if shown_as_text := cells_showing(page, FIGURE_AS_TEXT) + cells_showing(page, WIDGET_AS_TEXT):
        problems.append(f"figures or widgets shown as text: {shown_as_text}")
    assert not problems, "\n".join(problems)

    # The training cell shows the curves once: the final figure, the live picture hidden.
    training = _cell(page, "training").locator(".jp-OutputArea")
    expect(training.locator("img:visible")).to_have_count(1)
    expect(training).to_contain_text("finished: epoch 3/3")

    # The digit browser's slider spans the output, and "next mistake" lands on a wrong prediction.
    browser = _cell(page, "browser").locator(".jp-OutputArea")
    slider, output_width = browser.locator(".widget-slider").first, browser.bounding_box()["width"]
    assert slider.bounding_box()["width"] > 0.8 * output_width, "the slider should use the output's full width"
    browser.locator("button", has_text="next mistake").click()
    expect(browser.locator(f"b[style='color:{to_hex(WRONG)}']")).to_be_visible(timeout=WAIT_MS)
    expect(browser).to_contain_text("mistakes in 1,000 images")

    # The explorer keeps both runs in its table and overlays their curves.
    explorer = _cell(page, "explorer").locator(".jp-OutputArea")
    for size, run in (("8", 1), ("64", 2)):
        explorer.locator("button", has_text=f"train N_HIDDEN={size}").click()
        expect(explorer).to_contain_text(f"run {run} (N_HIDDEN={size}) done", timeout=WAIT_MS)
    expect(explorer.locator("table tr")).to_have_count(3)  # the header and two runs
    expect(explorer.locator("img:visible")).to_have_count(1)  # the overlay; the live picture is hidden

    _shoot_cells(page, "light")
    menu(page, "Settings", "Theme", "JupyterLab Dark")
    expect(page.locator("body[data-jp-theme-light='false']")).to_have_count(1, timeout=WAIT_MS)
    _shoot_cells(page, "dark")
    close_and_shut_down(page)
