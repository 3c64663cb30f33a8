"""What a person does in JupyterLab, as playwright steps: open, use a menu, run all, read outputs.

Selectors are JupyterLab 4's own CSS classes (jp-*, lm-*), ipywidgets' (widget-*, noUi-*) and
nbgrader's (validate-button, validation-success), so a test reads like the steps a student or
instructor takes.
"""
from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

from playwright.sync_api import Page, expect

RUN_ALL_TIMEOUT_S = 300
VALIDATE_TIMEOUT_S = 300
# What a widget looks like when the page could not render it: its text/plain repr, or the
# widget manager's own placeholder/error text.
WIDGET_AS_TEXT = re.compile(
    r"^(HBox|VBox|Box|GridBox|Tab|Accordion|IntSlider|FloatSlider|SelectionSlider|Dropdown|"
    r"ToggleButtons|Button|Output|Image|HTML|Label|FloatProgress|IntProgress)\(|"
    r"Error displaying widget|Loading widget\.\.\.|Widget Javascript not detected",
    re.MULTILINE,
)
FIGURE_AS_TEXT = re.compile(r"<Figure size \d+x\d+ with \d+ Axes>")


def open_lab(page: Page, lab, path: str = "") -> None:
    """Open JupyterLab (optionally a file, by path relative to the server root) and wait for it.

    Each call uses a new, empty workspace, so tabs left open by an earlier test are not restored.
    """
    workspace = f"lab/workspaces/test-{uuid.uuid4().hex[:8]}"
    page.goto(lab.url(f"{workspace}/tree/{path}" if path else workspace))
    # The splash screen goes when every extension has activated and the layout is restored.
    expect(page.locator("#jupyterlab-splash")).to_have_count(0, timeout=60_000)
    # ... and the main area is attached a moment later (seconds on a busy machine).
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=30_000)
    if path.endswith(".ipynb"):
        wait_for_kernel_idle(page)


def open_menu(page: Page, label: str):
    """Open a menu of the menu bar; returns the open menu's locator."""
    opened = page.locator(".lm-Menu:visible").first
    for _ in range(3):  # a click that lands while the menu bar re-renders opens nothing
        page.keyboard.press("Escape")
        page.locator(".lm-MenuBar-itemLabel", has_text=label).first.click()
        try:
            expect(opened).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            continue
    return opened


def menu(page: Page, *labels: str) -> None:
    """Click through the menu bar: menu(page, "Kernel", "Restart Kernel and Run All Cells")."""
    open_menu(page, labels[0])
    for label in labels[1:]:
        item = page.locator(".lm-Menu:visible .lm-Menu-item:not(.lm-mod-hidden)").filter(
            has=page.locator(".lm-Menu-itemLabel", has_text=label)
        ).first
        item.hover()
        item.click()


def accept_dialog(page: Page, label: str) -> None:
    """Click the dialog's accept button, after checking it says `label` (e.g. "Restart")."""
    button = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
    expect(button).to_have_text(re.compile(label, re.IGNORECASE))
    button.click()
    expect(page.locator(".jp-Dialog")).to_have_count(0)


def notebook(page: Page):
    """The notebook in the current main-area tab."""
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook")


def kernel_status(page: Page) -> str | None:
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator").get_attribute("data-status")


def wait_for_kernel_idle(page: Page, timeout_s: float = 90) -> None:
    """Wait until the notebook's kernel is started and idle (the toolbar's execution indicator)."""
    indicator = page.locator(".jp-NotebookPanel:visible .jp-Notebook-ExecutionIndicator")
    expect(indicator).to_have_attribute("data-status", "idle", timeout=timeout_s * 1000)


def restart_and_run_all(page: Page, timeout_s: float = RUN_ALL_TIMEOUT_S) -> float:
    """Kernel > Restart Kernel and Run All Cells, confirm, and wait until nothing is queued.

    Returns the seconds it took. A cell that raises stops the run (JupyterLab's own behaviour),
    so "done" means: at least one cell ran, no cell shows the busy prompt [*], kernel idle.
    """
    wait_for_kernel_idle(page)
    # Restarting within a moment of the first connection can make the server mix up the new and
    # the stale websocket (seen once: "Replacing stale connection", then a struct.error and a
    # kernel stuck "unknown"); a person never clicks that fast.
    page.wait_for_timeout(2_000)
    menu(page, "Kernel", "Restart Kernel and Run All Cells")
    accept_dialog(page, "Restart")
    start = time.monotonic()
    unknown_since = None
    prompts = notebook(page).locator(".jp-CodeCell .jp-InputPrompt")
    while time.monotonic() - start < timeout_s:
        page.wait_for_timeout(500)
        texts, status = prompts.all_text_contents(), kernel_status(page)
        if "[1]:" in texts and not any("*" in t for t in texts) and status == "idle":
            return time.monotonic() - start
        unknown_since = (unknown_since or time.monotonic()) if status in ("unknown", "dead") else None
        if unknown_since and time.monotonic() - unknown_since > 30:
            raise AssertionError(f"the kernel is {status!r} for 30 s after Restart Kernel and Run All")
    raise AssertionError(f"Restart Kernel and Run All did not finish within {timeout_s} s")


def code_cells(page: Page):
    return notebook(page).locator(".jp-CodeCell")


def cell_with_source(page: Page, text: str):
    """The first code cell whose source contains `text` (all cells stay in the DOM in JupyterLab 4's
    default content-visibility windowing mode)."""
    return code_cells(page).filter(has=page.locator(".jp-InputArea-editor", has_text=text)).first


def execution_counts(page: Page) -> list[int | None]:
    """Each code cell's execution count as its prompt shows it (None: not run)."""
    counts = []
    for text in code_cells(page).locator(".jp-InputPrompt").all_text_contents():
        match = re.search(r"\[(\d+)\]", text)
        counts.append(int(match.group(1)) if match else None)
    return counts


def stderr_outputs(page: Page):
    """Red output boxes: exceptions (JupyterLab renders them as stderr) and anything on stderr."""
    return notebook(page).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')


def text_outputs_by_cell(page: Page) -> list[tuple[str, str]]:
    """(first lines of the cell's source, its text outputs joined) for every code cell."""
    return code_cells(page).evaluate_all(
        """cells => cells.map(c => [
            Array.from(c.querySelectorAll('.cm-line')).slice(0, 2).map(l => l.textContent).join(' / ').slice(0, 100),
            Array.from(c.querySelectorAll('.jp-OutputArea-output.jp-RenderedText')).map(o => o.textContent).join('\\n'),
        ])"""
    )


def cells_showing(page: Page, pattern: re.Pattern) -> list[str]:
    """'<cell source start>: <matched text>' for each code cell whose text output matches `pattern`."""
    return [f"{source!r}: {match[0]!r}" for source, text in text_outputs_by_cell(page)
            for match in [pattern.search(text)] if match]


def save(page: Page) -> None:
    menu(page, "File", "Save Notebook")
    expect(page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current.jp-mod-dirty")).to_have_count(0)


def validate(page: Page, timeout_s: float = VALIDATE_TIMEOUT_S):
    """Click nbgrader's Validate button; returns the 'Validation Results' dialog body."""
    page.locator(".jp-NotebookPanel:visible .validate-button").click()
    message = page.locator(".jp-Dialog #validation-message")
    expect(message).to_be_visible(timeout=timeout_s * 1000)
    return message


def close_and_shut_down(page: Page) -> None:
    """Save, then File > Close and Shut Down Notebook, so kernels do not pile up between notebooks."""
    save(page)
    menu(page, "File", "Close and Shut Down Notebook")
    accept_dialog(page, "Ok|Shut Down")
    expect(page.locator(".jp-NotebookPanel:visible")).to_have_count(0)


def assignment_list(page: Page):
    """Nbgrader > Assignment List; returns the panel."""
    menu(page, "Nbgrader", "Assignment List")
    panel = page.locator(".jp-MainAreaWidget:visible", has=page.locator("#released_assignments_list"))
    expect(panel).to_be_visible()
    return panel


def fetch_assignment(page: Page, assignment: str) -> None:
    """Assignment List > Fetch, as a student gets an assignment; waits until it is listed as fetched."""
    panel = assignment_list(page)
    fetch = panel.locator("#released_assignments_list .list_item", has_text=assignment).locator("button", has_text="Fetch")
    expect(fetch).to_be_visible(timeout=30_000)
    fetch.click()
    expect(panel.locator("#fetched_assignments_list .list_item", has_text=assignment).first).to_be_visible(timeout=30_000)


def submit_assignment(page: Page, assignment: str) -> None:
    """Assignment List > Submit on a fetched assignment; waits until it is listed as submitted."""
    panel = assignment_list(page)
    submitted = panel.locator("#submitted_assignments_list .list_item", has_text=assignment)
    before = submitted.count()
    panel.locator("#fetched_assignments_list .list_item", has_text=assignment).locator(
        "button", has_text="Submit").first.click()
    expect(submitted).to_have_count(before + 1, timeout=60_000)


def fetch_feedback(page: Page, assignment: str) -> None:
    """Assignment List > Fetch Feedback on a submitted assignment, then its "view feedback" link
    (which takes the file browser to the feedback folder)."""
    panel = assignment_list(page)
    panel.locator("#submitted_assignments_list .list_item", has_text=assignment).locator(
        "button", has_text="Fetch Feedback").first.click()
    view = panel.locator("#submitted_assignments_list a", has_text="view feedback").first
    expect(view).to_be_visible(timeout=60_000)
    view.click()


def open_file_from_browser(page: Page, name: str) -> None:
    """Double-click `name` in the file browser's current folder."""
    item = page.locator(".jp-DirListing-content .jp-DirListing-item", has_text=name).first
    expect(item).to_be_visible(timeout=30_000)
    item.dblclick()


class Screenshots:
    """Numbered screenshots of one test's steps in build/screenshots/<test>/."""

    def __init__(self, page, folder: Path):
        self.page, self.folder, self.count = page, folder, 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def __call__(self, step: str, full_page: bool = False) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower()).strip('-')}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path
