"""The widgets build without a browser and react: moving a slider or pressing train changes what they show."""
import ipywidgets as widgets
import numpy as np
import pytest

from helpers.training import History, fit, seed_everything
from helpers.widgets import DigitBrowser, LiveTrainingView, digit_browser, hidden_size_explorer
from student_style import MNISTClassifier, MNISTDataset, datasets, mnist_subset



def is_png(image_widget):
    return bytes(image_widget.value).startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def digits(real_mnist_root):
    return mnist_subset("test", 100)


def test_digit_browser_without_a_model_follows_the_slider(digits):
    images, labels = digits
    browser = digit_browser(images, labels)
    assert isinstance(browser, widgets.Widget) and isinstance(browser, DigitBrowser)
    first_image, first_caption = bytes(browser.image.value), browser.caption.value
    assert is_png(browser.image) and f"label <b>{labels[0]}</b>" in first_caption
    browser.slider.value = 1  # what dragging the slider does
    assert bytes(browser.image.value) != first_image
    assert f"#1</b>: label <b>{labels[1]}</b>" in browser.caption.value
    assert browser.slider.max == len(images) - 1


def test_digit_browser_shows_the_models_probabilities(digits):
    images, labels = digits
    seed_everything(0)
    model = MNISTClassifier(16)
    fit(model, MNISTDataset(images, labels), epochs=2, lr=1e-2, progress=False)
    browser = digit_browser(images, labels, model=model, collate_fn=MNISTDataset(images, labels).collate_func)
    bars, caption = bytes(browser.probs_image.value), browser.caption.value
    assert is_png(browser.probs_image) and "predicted" in caption
    probs = browser.probabilities(0)
    assert probs.shape == (10,) and np.isclose(probs.sum(), 1, atol=1e-5)
    browser.slider.value = 5
    assert bytes(browser.probs_image.value) != bars and browser.caption.value != caption


def test_live_training_view_redraws_while_fit_runs(real_mnist_root):
    train_set, test_set = datasets(600, 200)
    view = LiveTrainingView(min_interval_s=0.0)
    assert isinstance(view.widget, widgets.Widget) and bytes(view.image.value) == b""
    fit(MNISTClassifier(8), train_set, test_set, epochs=2, log_every=2, progress=False, callbacks=[view])
    assert is_png(view.image)
    assert view.redraws == 10 // 2 + 2  # 2 x 5 steps: every 2nd step, plus each epoch end
    assert "epoch 2/2" in view.status.value and "validation accuracy" in view.status.value

    throttled = LiveTrainingView(min_interval_s=60.0)
    fit(MNISTClassifier(8), train_set, epochs=2, log_every=1, progress=False, callbacks=[throttled])
    assert throttled.redraws == 3  # the first call, then only the two epoch ends


def test_hidden_size_explorer_trains_the_picked_size(real_mnist_root):
    train_set, test_set = datasets(500, 200)
    explorer = hidden_size_explorer(train_set, test_set, None, MNISTClassifier, sizes=(4, 16), epochs=1, lr=1e-2)
    assert isinstance(explorer, widgets.Widget) and "no run yet" in explorer.table.value
    explorer.size_picker.value = 16
    explorer.train_button.click()  # what pressing the button does
    assert set(explorer.results) == {16}
    assert explorer.results[16]["params"] == 784 * 16 + 16 + 2 * 16 + 16 * 10 + 10
    assert "<td>16</td>" in explorer.table.value and is_png(explorer.summary_image)
    assert explorer.live.redraws >= 1 and not explorer.train_button.disabled
    explorer.run(4)
    assert set(explorer.results) == {4, 16} and "<td>4</td>" in explorer.table.value


def test_live_view_hides_its_picture_until_there_is_one():
    """An empty ipywidgets.Image shows a broken-image icon in the browser: keep it hidden until drawn."""
    view = LiveTrainingView()
    assert view.image.layout.display == "none" and not bytes(view.image.value)
    history = History(step_loss=[2.3, 1.0], epochs=[], wall_time_s=0.5, device="cpu")
    view.draw(history)
    assert is_png(view.image) and view.image.layout.display != "none"
