"""The student's side in a real browser: the reference answers run clean, the blank release stops.

What a student sees is checked on the page itself: red boxes, images, widgets that are widgets
(not their text repr) and react to the mouse/keyboard, and nbgrader's Validate dialog.
"""
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

from lab_server import ASSIGNMENT, skip_or_fail
from jupyterlab_ui import (
    FIGURE_AS_TEXT, WIDGET_AS_TEXT, accept_dialog, cell_with_source, cells_showing, close_and_shut_down,
    execution_counts, fetch_assignment, notebook, open_lab, restart_and_run_all, stderr_outputs, validate,
)

SLIDER_WAIT_MS = 20_000


def _notebooks(folder):
    notebooks = sorted(p for p in folder.glob("*.ipynb"))
    if not notebooks:
        skip_or_fail(f"no notebooks in {folder}")
    return notebooks


def _images_in(locator) -> list[str]:
    """The sources of all <img> under `locator` (data: URIs for matplotlib, blob: for widgets)."""
    return locator.locator("img").evaluate_all("imgs => imgs.map(i => i.src)")


def _move_slider_and_see_the_image_change(page, cell) -> None:
    slider = cell.locator(".jp-OutputArea .widget-slider").first
    expect(slider).to_be_visible()
    cell.scroll_into_view_if_needed()
    readout = slider.locator(".widget-readout")
    before_value, before_images = readout.inner_text(), _images_in(cell.locator(".jp-OutputArea"))
    assert before_images, "the digit browser shows no image before the slider moves"
    page.shot("digit browser before moving the slider")
    handle = slider.locator(".noUi-handle")
    handle.focus()
    for _ in range(3):
        handle.press("ArrowRight")
    expect(readout).not_to_have_text(before_value, timeout=SLIDER_WAIT_MS)
    # The kernel redraws the digit on the slider's change; wait for that round trip.
    page.wait_for_function(
        "([el, before]) => { const now = Array.from(el.querySelectorAll('img')).map(i => i.src);"
        " return now.length > 0 && JSON.stringify(now) !== JSON.stringify(before); }",
        arg=[cell.locator(".jp-OutputArea").element_handle(), before_images], timeout=SLIDER_WAIT_MS,
    )
    # ... and in the end the caption describes the digit the slider points at (the kernel caught up).
    expect(cell.locator(".jp-OutputArea")).to_contain_text(f"#{readout.inner_text().strip()}:", timeout=SLIDER_WAIT_MS)
    page.shot("digit browser after moving the slider")


def _check_outputs(page) -> list[str]:
    """What is wrong with the outputs on the page after Run All, as readable sentences."""
    problems = []
    counts = execution_counts(page)
    if None in counts:
        problems.append(f"cells {[i for i, c in enumerate(counts) if c is None]} (code cell numbers) did not run")
    red = stderr_outputs(page).all_text_contents()
    if red:
        problems.append("red output boxes (errors or stderr):\n" + "\n---\n".join(t[-1500:] for t in red))
    if figures := cells_showing(page, FIGURE_AS_TEXT):
        problems.append(f"figures shown as text instead of drawn, in cells {figures}")
    if widgets := cells_showing(page, WIDGET_AS_TEXT):
        problems.append(f"widgets shown as text, in cells {widgets}")
    if notebook(page).locator(".jp-OutputArea .jp-RenderedImage img").count() == 0:
        problems.append("no plot rendered as an image")
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('.jp-OutputArea img')).every(i => i.complete)", timeout=10_000
    )
    broken = notebook(page).locator(".jp-OutputArea img").evaluate_all(
        "imgs => imgs.filter(i => i.naturalWidth === 0 && i.offsetParent !== null)"  # visible ones only
        ".map(i => i.closest('.jp-CodeCell').querySelector('.cm-line').textContent.slice(0, 100))"
    )
    if broken:
        problems.append(f"output images showing the broken-image icon (empty image?), in cells {broken}")
    if notebook(page).locator(".jp-OutputArea .jupyter-widgets").count() == 0:
        problems.append("no widget rendered")
    training = cell_with_source(page, "live_view.finish(")
    if training.count():
        # the student's loop trains; the live view's final figure stays as an image (widgets are not saved)
        curves = training.locator(".jp-OutputArea .jp-RenderedImage img")
        if curves.count() == 0:
            problems.append("the training cell showed no training curves")
        else:
            curves.first.scroll_into_view_if_needed()
            page.shot("training: per-epoch lines and the final curves")
    return problems


def test_reference_answers_run_clean_with_plots_widgets_and_validate(page, lab, course, reference_folder):
    """Every check runs even when an earlier one finds a problem; all problems are reported at once."""
    problems = []
    for path in _notebooks(reference_folder):
        open_lab(page, lab, str(path.relative_to(course)))
        page.shot(f"{path.stem} opened")
        seconds = restart_and_run_all(page)
        print(f"{path.name}: Restart Kernel and Run All took {seconds:.1f} s in the browser")
        page.shot(f"{path.stem} after run all")
        problems += [f"{path.name}: {p}" for p in _check_outputs(page)]

        browser = cell_with_source(page, "digit_browser(")
        if browser.count():
            try:
                _move_slider_and_see_the_image_change(page, browser)
            except (AssertionError, PlaywrightTimeout) as exc:
                problems.append(f"{path.name}: the digit browser did not respond to its slider: {exc}")

        message = validate(page)
        page.shot(f"{path.stem} validate dialog")
        if "validation-success" not in (message.get_attribute("class") or "") or \
                "Success! Your notebook passes all the tests." not in message.text_content():
            problems.append(f"{path.name}: Validate did not report success:\n{message.text_content()[:2000]}")
        accept_dialog(page, "Ok")
        close_and_shut_down(page)
    assert not problems, "\n\n".join(problems)


def _fetch_from_assignment_list(page, lab, course):
    """Nbgrader > Assignment List > Fetch, as a student gets the assignment; returns its folder."""
    open_lab(page, lab)
    fetch_assignment(page, ASSIGNMENT)
    page.shot("assignment fetched from the assignment list")
    return course / ASSIGNMENT


def test_blank_release_stops_at_the_first_blank_with_not_implemented_error(page, lab, course):
    for path in _notebooks(_fetch_from_assignment_list(page, lab, course)):
        open_lab(page, lab, str(path.relative_to(course)))
        restart_and_run_all(page)
        errors = stderr_outputs(page)
        assert errors.count() == 1, f"{path.name}: expected exactly one error, got {errors.all_text_contents()}"
        error = errors.first
        error.scroll_into_view_if_needed()
        expect(error).to_be_visible()
        expect(error).to_contain_text("NotImplementedError")
        page.shot(f"{path.stem} stops at the first blank")

        # Everything up to the failing cell ran, nothing after it (Run All stops at an error).
        counts = execution_counts(page)
        cells = notebook(page).locator(".jp-CodeCell")
        failing = next(i for i in range(cells.count()) if cells.nth(i).locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').count())
        assert all(c is not None for c in counts[: failing + 1]), f"{path.name}: cells before the blank did not run: {counts}"
        assert all(c is None for c in counts[failing + 1:]), f"{path.name}: cells after the blank ran: {counts}"
        close_and_shut_down(page)
