"""JupyterLab starts for the course with nbgrader's extensions working (what `make lab` promises)."""
from playwright.sync_api import expect

from lab_server import ASSIGNMENT, nbgrader_settings
from jupyterlab_ui import menu, open_lab, open_menu


def test_lab_has_nbgrader_menu_and_assignment_list_shows_the_assignment(page, lab):
    open_lab(page, lab)
    page.shot("jupyterlab loaded")

    items = open_menu(page, "Nbgrader").locator(".lm-Menu-itemLabel").all_inner_texts()
    page.shot("nbgrader menu")
    page.keyboard.press("Escape")
    for wanted in ("Assignment List", "Course List", "Formgrader"):
        assert wanted in items, f"the Nbgrader menu lacks {wanted!r}; it has {items}"

    menu(page, "Nbgrader", "Assignment List")
    # The list loads from the exchange inside the course (a missing exchange shows an error
    # instead): released with a Fetch button, or, once the student test fetched it, downloaded.
    listed = page.locator("#released_assignments_list .list_item, #fetched_assignments_list .list_item")
    expect(listed.filter(has_text=ASSIGNMENT).first).to_be_visible(timeout=30_000)
    expect(page.locator("#released_assignments_list_error")).to_be_hidden()
    page.shot("assignment list shows the assignment")


def test_formgrader_opens_and_lists_the_assignment(page, lab):
    open_lab(page, lab)
    menu(page, "Nbgrader", "Formgrader")
    formgrader = page.frame_locator("iframe[src*='formgrader']")
    expect(formgrader.locator("h1", has_text="Manage Assignments")).to_be_visible(timeout=30_000)
    row = formgrader.locator("#main-table tr", has_text=ASSIGNMENT)
    expect(row).to_be_visible()
    page.shot("formgrader manage assignments")


def test_notebook_toolbar_has_the_validate_button(page, lab, course):
    notebook = sorted((course / "release" / ASSIGNMENT).glob("*.ipynb"))[0]
    open_lab(page, lab, str(notebook.relative_to(course)))
    expect(page.locator(".jp-NotebookPanel:visible .validate-button")).to_be_visible(timeout=30_000)
    page.shot("validate button in the notebook toolbar")


def test_make_lab_released_into_an_exchange_inside_the_course(lab, lab_env):
    course_id, exchange = nbgrader_settings(lab.root, lab_env)
    assert lab.root in exchange.parents, f"nbgrader_config.py should put the exchange inside the course, not at {exchange}"
    assert exchange.stat().st_mode & 0o777 == 0o777, "the exchange must be writable by every student (mode 777)"
    released = exchange / course_id / "outbound" / ASSIGNMENT
    assert sorted(p.name for p in released.glob("*.ipynb")) == sorted(
        p.name for p in (lab.root / "source" / ASSIGNMENT).glob("*.ipynb")
    ), f"`make lab` should release every notebook of {ASSIGNMENT} into {released}"
