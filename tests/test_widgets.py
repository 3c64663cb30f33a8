"""The widgets build without a browser and react: moving a slider or pressing train changes what they show."""
import ipywidgets as widgets
import numpy as np
import pytest

from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from helpers.evaluation import evaluate
from helpers.plots import WRONG
from helpers.training import History, fit, seed_everything
from helpers.widgets import RUN_COLUMNS, DigitBrowser, LiveTrainingView, digit_browser, hidden_size_explorer
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
    assert browser.slider.layout.width == "100%"  # 10,000 images need every pixel of the page's width
    assert browser.next_button is None and browser.previous_button is None  # no model, no mistakes to find


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


def test_digit_browser_steps_through_the_models_mistakes(digits):
    images, labels = digits
    seed_everything(0)
    model = MNISTClassifier(16)
    data = MNISTDataset(images, labels)
    fit(model, data, epochs=2, lr=1e-2, progress=False)
    wrong = np.flatnonzero(evaluate(model, data).preds != labels)  # the mistakes, found independently
    assert 2 <= len(wrong) < len(labels)
    browser = digit_browser(images, labels, model=model, collate_fn=data.collate_func)
    assert browser.next_button.description == "next mistake"
    browser.slider.value = int(wrong[0])
    browser.next_button.click()  # what pressing the button does
    assert browser.slider.value == wrong[1] and f'style="color:{to_hex(WRONG)}"' in browser.caption.value
    assert f"{len(wrong)} mistakes in {len(labels)} images" in browser.caption.value
    browser.previous_button.click()
    assert browser.slider.value == wrong[0]
    browser.previous_button.click()  # before the first mistake: wraps around to the last
    assert browser.slider.value == wrong[-1]
    browser.next_button.click()
    assert browser.slider.value == wrong[0]
    np.testing.assert_array_equal(browser.mistakes, wrong)


def test_live_training_view_redraws_while_fit_runs(real_mnist_root):
    train_set, test_set = datasets(600, 200)
    view = LiveTrainingView(min_interval_s=0.0)
    assert isinstance(view.widget, widgets.Widget) and bytes(view.image.value) == b""
    fit(MNISTClassifier(8), train_set, test_set, epochs=2, log_every=2, progress=False, callbacks=[view])
    assert is_png(view.image)
    assert view.redraws == 10 // 2 + 2  # 2 x 5 steps: every 2nd step, plus each epoch end
    assert "epoch 2/2" in view.status.value and "validation accuracy" in view.status.value

    drawn = bytes(view.image.value)
    fig = view.finish()  # the training cell's last expression: the final figure, shown once
    assert isinstance(fig, Figure) and fig is view.figure and len(fig.axes) == 2
    assert view.image.layout.display == "none" and bytes(view.image.value) == drawn
    assert view.status.value.startswith("finished: epoch 2/2")

    throttled = LiveTrainingView(min_interval_s=60.0)
    fit(MNISTClassifier(8), train_set, epochs=2, log_every=1, progress=False, callbacks=[throttled])
    assert throttled.redraws == 3  # the first call, then only the two epoch ends


def test_hidden_size_explorer_keeps_and_compares_every_run(real_mnist_root):
    train_set, test_set = datasets(500, 200)
    status_while_building = []

    def build(n_hidden):  # the explorer builds the model once the run has started
        status_while_building.append(explorer.status.value)
        assert all(button.disabled for button in explorer.train_buttons.values())  # one run at a time
        return MNISTClassifier(n_hidden)

    explorer = hidden_size_explorer(train_set, test_set, None, build, sizes=(4, 16), epochs=2, lr=1e-2)
    assert isinstance(explorer, widgets.Widget) and "no run yet" in explorer.status.value
    assert list(explorer.train_buttons) == [4, 16]
    explorer.train_buttons[16].click()  # what pressing the button does
    assert "training N_HIDDEN=16" in status_while_building[0] and "no run yet" not in status_while_building[0]
    assert "run 1 (N_HIDDEN=16) done" in explorer.status.value
    (run,) = explorer.runs
    history = explorer.histories[0]
    assert run["size"] == 16 and run["params"] == 784 * 16 + 16 + 2 * 16 + 16 * 10 + 10
    last = history.epochs[-1]
    assert run["train_acc"] == last["train_acc"] is not None and run["val_acc"] == last["val_acc"]
    assert run["loss_gap"] == pytest.approx(last["val_loss"] - last["train_loss"])
    assert run["acc_gap"] == pytest.approx(last["train_acc"] - last["val_acc"])
    for heading, _, _ in RUN_COLUMNS:
        assert heading in explorer.table.value
    assert f"{100 * last['val_acc']:.2f}%" in explorer.table.value and is_png(explorer.summary_image)
    assert explorer.live.redraws >= 1 and not any(b.disabled for b in explorer.train_buttons.values())
    assert explorer.live.image.layout.display == "none"  # the run's curves are in the overlay now

    overlay = bytes(explorer.summary_image.value)
    explorer.run(4)
    explorer.run(16)  # the same size again is a new run, not a replacement
    assert [r["size"] for r in explorer.runs] == [16, 4, 16] and explorer.table.value.count("<tr>") == 4
    assert "training N_HIDDEN=4</b> (run 2)" in status_while_building[1]
    assert bytes(explorer.summary_image.value) != overlay


def test_live_view_hides_its_picture_until_there_is_one():
    """An empty ipywidgets.Image shows a broken-image icon in the browser: keep it hidden until drawn."""
    view = LiveTrainingView()
    assert view.image.layout.display == "none" and not bytes(view.image.value)
    history = History(step_loss=[2.3, 1.0], epochs=[], wall_time_s=0.5, device="cpu")
    view.draw(history)
    assert is_png(view.image) and view.image.layout.display != "none"


def test_live_view_finish_draws_a_history_it_never_saw_and_refuses_nothing_to_show():
    """While grading the lab trains without callbacks; finish(history) still gives the one final figure."""
    view = LiveTrainingView()
    with pytest.raises(ValueError, match="pass the History"):
        view.finish()
    history = History(step_loss=[2.3, 1.0, 0.7], epochs=[dict(epoch=1, train_loss=1.3, val_loss=0.9, val_acc=0.7)],
                      wall_time_s=0.5, config=dict(epochs=1, steps_per_epoch=3))
    fig = view.finish(history)
    assert isinstance(fig, Figure) and view.redraws == 0 and view.image.layout.display == "none"
    assert len(fig.axes[1].lines) == 1 and "validation accuracy 70.00%" in view.status.value
