"""The instructor's side in a real browser: Formgrader shows the graded example submissions with
their scores, a submission opens in Formgrader, and a student's feedback opens in JupyterLab."""
from nbgrader.api import Gradebook
from playwright.sync_api import expect

from lab_server import ASSIGNMENT, BLANK_STUDENT, EXAMPLE_STUDENTS, MISTAKE_STUDENT, REFERENCE_STUDENT
from jupyterlab_ui import menu, open_lab


def _scores(course) -> dict[str, tuple[float, float]]:
    """student -> (score, max score) as the gradebook holds them."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {
            student: (sub.score, sub.max_score)
            for student in EXAMPLE_STUDENTS
            for sub in [gradebook.find_submission(ASSIGNMENT, student)]
        }


def _names(course) -> dict[str, tuple[str, str]]:
    """student -> (first name, last name) as the gradebook holds them."""
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {s.id: (s.first_name, s.last_name) for s in gradebook.students}


def _as_shown(score: float) -> str:
    return f"{score:g}"


def test_formgrader_lists_graded_submissions_with_scores_and_opens_one(page, lab, graded_course):
    scores = _scores(graded_course)
    # The examples are graded the way they should be, so what the page shows means something.
    assert scores[REFERENCE_STUDENT][0] > scores[MISTAKE_STUDENT][0] > scores[BLANK_STUDENT][0] == 0, scores

    open_lab(page, lab)
    menu(page, "Nbgrader", "Formgrader")
    formgrader = page.frame_locator("iframe[src*='formgrader']")
    assignment_row = formgrader.locator("#main-table tr", has_text=ASSIGNMENT)
    expect(assignment_row.locator("td.num-submissions")).to_have_text(str(len(EXAMPLE_STUDENTS)), timeout=30_000)
    page.shot("formgrader: the assignment with its submissions")

    assignment_row.locator("td.num-submissions a").click()
    for student, (score, max_score) in scores.items():
        row = formgrader.locator("#main-table tr", has=formgrader.locator("td.student-id", has_text=student))
        expect(row.locator("td.score")).to_have_text(f"{_as_shown(score)} / {_as_shown(max_score)}", timeout=30_000)
        expect(row.locator("td.status")).to_contain_text("grad")  # "graded" or "needs manual grading"
        # the roster's names (examples are named by what they are), not "None, None"
        first, last = _names(graded_course)[student]
        assert first and last, f"{student} has no name in the gradebook"
        expect(row.locator("td.student-name")).to_contain_text(f"{last}, {first}")
    page.shot("formgrader: submissions with their scores")

    # Open the reference submission: its notebook, then the graded notebook itself (formgrade view).
    formgrader.locator("#main-table tr", has_text=REFERENCE_STUDENT).locator("td.student-name a").click()
    notebook_row = formgrader.locator("#main-table tr", has_text=ASSIGNMENT)
    expect(notebook_row).to_be_visible(timeout=30_000)
    page.shot("formgrader: the reference student's notebooks")
    notebook_row.locator("a").first.click()
    expect(formgrader.locator(".nbgrader_cell, #notebook").first).to_be_visible(timeout=60_000)
    expect(formgrader.locator("body")).to_contain_text("MNISTClassifier")
    page.shot("formgrader: the reference submission, graded")


def test_feedback_of_a_submission_opens_with_its_score_and_no_hidden_tests(page, lab, graded_course):
    score, max_score = _scores(graded_course)[MISTAKE_STUDENT]
    feedback = f"feedback/{MISTAKE_STUDENT}/{ASSIGNMENT}"
    html = sorted((graded_course / feedback).glob("*.html"))
    assert html, f"no feedback in {graded_course / feedback}"

    open_lab(page, lab, f"{feedback}/{html[0].name}")
    viewer = page.frame_locator(".jp-MainAreaWidget:visible iframe")
    expect(viewer.locator("body")).to_contain_text(f"Score: {score:.1f} / {max_score:.1f}", timeout=30_000)
    page.shot("feedback of a submission with a mistake")
    text = viewer.locator("body").inner_text()
    assert "BEGIN HIDDEN TESTS" not in text and "_HT." not in text, "the feedback shows hidden test code"
    # Readable: tests listed by their task, the hand grade in (feedback came after it), equations
    # drawn as math inside JupyterLab's viewer (which runs no scripts, so no MathJax could).
    toc = viewer.locator("#toc").inner_text()
    assert "Test cell" not in toc and "2.1 softmax" in toc, toc
    assert "Written response (Score: 3.0 / 3.0)" in toc, toc
    fraction = viewer.locator("math[display=block] mfrac").first
    fraction.scroll_into_view_if_needed()
    box = fraction.bounding_box()
    assert box and box["height"] > 25, f"the softmax equation is not drawn as math: {box}"
    page.shot("feedback: an equation drawn as math")
