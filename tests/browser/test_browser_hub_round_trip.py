"""A whole course on a real JupyterHub, in Chromium: release, fetch, submit, grade, feedback, and privacy.

One hub (`make hub`: Unix users, PAM logins, a shared nbgrader exchange) and one pass, because each
step needs the one before. Every person has a browser context of their own (their own cookies):

1. the instructor (re)releases the assignment from Formgrader's Manage Assignments;
2. student A fetches it in the Assignment List, completes it with the reference answers, validates
   and submits with nbgrader's buttons; student B submits the reference with one typical mistake;
3. the instructor collects and autogrades from Formgrader, grades the written answer by hand in
   Formgrader's Manual Grading (the rubric is on that page), generates and releases feedback;
4. each student fetches their own feedback and reads their own scores in it;
5. student A cannot open B's home, the exchange's inbound or B's feedback by URL.

The answers are written into the student's notebook through the student's own contents API (what
typing them would save); fetching, validating and submitting are the Assignment List's and the
notebook's buttons. Screenshots of every step go to build/screenshots/<this test>/.
"""
from __future__ import annotations

import json
import pwd
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from deploy.hub import COURSE_FOLDER
from hub_course import check_prerequisites, new_hub_course
from jupyterlab_ui import (
    accept_dialog, close_and_shut_down, fetch_assignment, fetch_feedback, menu, open_file_from_browser,
    Screenshots, open_lab, submit_assignment, validate,
)
from lab_server import ASSIGNMENT, SCREENSHOTS, VIEWPORT
from mnist_grader.course import load_course
from mnist_grader.examples import answered, apply_mistake, reference_answers, released_notebooks
from mnist_grader.library import load_library
from mnist_grader.trusted.annotate import MARK as TRUSTED_MARK

MISTAKE = "softmax-overflow"  # grader/mnist_grader/mistakes/mnist_mlp.py: loses test_softmax
WRITTEN = "written_n_hidden"  # the answer graded by hand
# What student A writes (their own words); the rubric's point lines are what the grader must see.
WRITTEN_ANSWER = ("With 8 hidden units the network reaches about 91 % on both sets; with 512 about 98.8 % "
                  "training and 97.9 % validation accuracy, and it takes longer. The gap grows with the width.")
RUBRIC_LINE = "1 point: the four numbers for 8 and for 512"
HAND_SCORES = (3.0, 2.0)  # A, B: what the grader gives the written answers
MISTAKE_TEST = "test_softmax"
SOFTMAX_TITLE = "2.1 softmax"  # that test cell's title in the feedback: its task's heading
# What a test cell says when it ran without the course's grader (plain nbgrader autograde).
NO_GRADER = "No module named 'mnist_grader'"
NOTEBOOK = f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb"
SERVER_START_TIMEOUT_MS = 180_000
GRADING_TIMEOUT_MS = 300_000


@dataclass
class UserServer:
    """A hub user's single-user server, addressed the way `open_lab` expects (`url(path)`)."""

    hub_url: str
    user: str

    def url(self, path: str = "lab") -> str:
        return f"{self.hub_url}/user/{self.user}/{path.lstrip('/')}"


@dataclass
class Person:
    """Somebody at their own browser (a context of their own), logged in to the hub."""

    name: str
    page: Page
    server: UserServer

    def xsrf_headers(self) -> dict[str, str]:
        """The XSRF header the user's server asks of cookie-authenticated writes."""
        cookies = self.page.context.cookies(self.server.url(""))
        token = next(c["value"] for c in cookies if c["name"] == "_xsrf")
        return {"X-XSRFToken": token}


@pytest.fixture(scope="module")
def hub(chromium_path, real_mnist_root):
    """`make hub` from a course copy (unique users, free ports); `make hub-clean` afterwards."""
    check_prerequisites()
    course = new_hub_course()
    try:
        print(course.start())
        yield course
    finally:
        try:
            print(course.clean())
        finally:
            course.discard()


def log_in(chromium, hub, user: str, shots: Screenshots) -> Person:
    """Open a browser of one's own, log in on the hub's page and wait for one's JupyterLab."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{hub.url}/hub/login")
    page.locator("#username_input").fill(user)
    page.locator("#password_input").fill(hub.passwords()[user])
    shots.page = page
    shots(f"{role(user)} logs in")
    page.locator("#login_submit").click()
    # The hub shows its spawn-pending page until the user's server is up, then JupyterLab.
    page.wait_for_url(re.compile(rf"/user/{re.escape(user)}/lab"), timeout=SERVER_START_TIMEOUT_MS)
    return Person(name=user, page=page, server=UserServer(hub.url, user))


def role(user: str) -> str:
    """The user's name without the test's random prefix ("student1"): screenshot names stay put."""
    return user.rsplit("-", 1)[-1]


def shoot(shots: Screenshots, person: Person, step: str) -> None:
    """A numbered screenshot of the person's page."""
    shots.page = person.page
    shots(f"{role(person.name)}: {step}")


def formgrader(person: Person):
    """Formgrader in the instructor's JupyterLab (Nbgrader > Formgrader): its frame."""
    menu(person.page, "Nbgrader", "Formgrader")
    return person.page.frame_locator("iframe[src*='formgrader']")


def formgrader_action(frame, row, column: str, timeout_ms: float = 60_000) -> str:
    """Click Formgrader's link in `column` of `row` and wait for its result dialog; returns the
    dialog's text (closed afterwards). Formgrader's error dialog fails the test with its text."""
    row.locator(f"td.{column} a").first.click()
    dialog = frame.locator(".modal:visible")
    expect(dialog).to_have_count(1, timeout=timeout_ms)
    kind, text = dialog.get_attribute("id"), dialog.locator(".modal-body").inner_text()
    dialog.locator(".modal-footer button").first.click()
    expect(frame.locator(".modal:visible")).to_have_count(0)
    assert kind == "success-modal", f"Formgrader's {column}: {kind}\n{text[-3000:]}"
    return text


def put_notebook(person: Person, path: str, notebook: nbformat.NotebookNode) -> None:
    """Save `notebook` at `path` through the person's own contents API (what JupyterLab's Save does)."""
    response = person.page.request.put(
        person.server.url(f"api/contents/{path}"), headers=person.xsrf_headers(),
        data=json.dumps({"type": "notebook", "format": "json", "content": notebook}))
    assert response.status in (200, 201), f"saving {path} as {person.name}: {response.status} {response.text()[:300]}"


def instructor_course(hub) -> Path:
    return Path(hub.settings["hub_dir"]) / "home" / hub.settings["instructor"] / COURSE_FOLDER


def submissions(hub) -> dict[str, tuple[float, float, dict[str, float]]]:
    """student -> (score, max score, {grade cell: score}) from the instructor's gradebook."""
    course = instructor_course(hub)
    result = {}
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        for sub in gradebook.assignment_submissions(ASSIGNMENT):
            cells = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
            result[sub.student_id] = (sub.score, sub.max_score, cells)
    return result


def student_notebooks(hub) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(reference answers, reference with one mistake) built from the instructor's course the way
    the grader's example submissions are, with the written answer in a student's own words."""
    course = load_course(instructor_course(hub))
    answers = reference_answers(course, ASSIGNMENT)
    answers[WRITTEN] = WRITTEN_ANSWER
    reference = answered(released_notebooks(course, ASSIGNMENT), answers)
    mistake = next(m for m in load_library(course.root, ASSIGNMENT).mistakes if m.name == MISTAKE)
    with_mistake = apply_mistake(reference, mistake)
    return reference[ASSIGNMENT], with_mistake[ASSIGNMENT]


def served(person: Person, path: str) -> str | None:
    """What the person's request for `path` (below the hub's URL) got, when it was served (a file or
    a contents listing); None when it was refused, missing or sent to a login page."""
    response = person.page.request.get(f"{person.server.hub_url}/{path}", max_redirects=0)
    if response.status >= 300:
        return None
    body = response.body()
    if "application/json" in response.headers.get("content-type", "") or b"nbgrader" in body or b"Score" in body:
        return f"{path} -> {response.status} {body[:200]!r}"
    return None


@dataclass
class RoundTrip:
    """The hub, its people at their browsers, and the screenshots, shared by the steps."""

    hub: object
    shots: Screenshots
    people: dict[str, Person]

    @property
    def settings(self) -> dict:
        return self.hub.settings

    @property
    def exchange(self) -> Path:
        return Path(self.settings["hub_dir"]) / "exchange" / self.settings["course_id"]

    def person(self, chromium, user: str) -> Person:
        """The person logged in as `user` (logging in the first time)."""
        if user not in self.people:
            self.people[user] = log_in(chromium, self.hub, user, self.shots)
        return self.people[user]


def release_from_formgrader(trip: RoundTrip, teacher: Person) -> None:
    """`make hub` released the assignment; the instructor takes it back and releases it again in
    Formgrader's Manage Assignments, and the exchange follows each click."""
    open_lab(teacher.page, teacher.server)
    frame = formgrader(teacher)
    row = frame.locator("#main-table tr", has_text=ASSIGNMENT)
    expect(row.locator("td.status")).to_have_text("released", timeout=30_000)
    formgrader_action(frame, row, "release")  # released: the column's link takes it back
    expect(row.locator("td.status")).to_have_text("draft", timeout=30_000)
    assert not (trip.exchange / "outbound" / ASSIGNMENT).exists(), "unreleased, but still in the exchange"
    formgrader_action(frame, row, "release")
    expect(row.locator("td.status")).to_have_text("released", timeout=30_000)
    assert (trip.exchange / "outbound" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    shoot(trip.shots, teacher, "assignment released in formgrader")


def student_submits(trip: RoundTrip, student: Person, notebook: nbformat.NotebookNode, check: bool) -> None:
    """Assignment List > Fetch, the answers saved, Validate (when `check`), Assignment List > Submit."""
    open_lab(student.page, student.server)
    fetch_assignment(student.page, ASSIGNMENT)
    shoot(trip.shots, student, "assignment fetched")
    put_notebook(student, NOTEBOOK, notebook)
    if check:
        open_lab(student.page, student.server, NOTEBOOK)
        message = validate(student.page)
        shoot(trip.shots, student, "validate")
        assert "Success! Your notebook passes all the tests." in message.text_content(), message.text_content()[:2000]
        accept_dialog(student.page, "Ok")
        close_and_shut_down(student.page)
    submit_assignment(student.page, ASSIGNMENT)
    shoot(trip.shots, student, "submitted")


def collect_and_autograde(trip: RoundTrip, teacher: Person, students: list[str]) -> None:
    """Formgrader: Collect, then each submission's Autograde."""
    teacher.page.bring_to_front()
    open_lab(teacher.page, teacher.server)
    frame = formgrader(teacher)
    row = frame.locator("#main-table tr", has_text=ASSIGNMENT)
    formgrader_action(frame, row, "collect")
    expect(row.locator("td.num-submissions")).to_have_text(str(len(students)), timeout=30_000)
    shoot(trip.shots, teacher, "submissions collected")
    row.locator("td.num-submissions a").click()
    for student in students:
        student_row = frame.locator("#main-table tr", has=frame.locator("td.student-id", has_text=student))
        formgrader_action(frame, student_row, "autograde", timeout_ms=GRADING_TIMEOUT_MS)
        expect(student_row.locator("td.score")).to_have_text(re.compile(r"\d"), timeout=30_000)
    shoot(trip.shots, teacher, "submissions autograded")
    # Formgrader's Autograde is the sandboxed grader (nbgrader_config.py's SandboxedAutograde): the
    # hidden tests ran in the trusted run, whose verdict is written under each test cell.
    assert not without_the_grader(trip, students), "Formgrader's Autograde ran the tests without the grader"
    course = instructor_course(trip.hub)
    for student in students:
        assert TRUSTED_MARK in (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()


def without_the_grader(trip: RoundTrip, students: list[str]) -> list[str]:
    """The students whose autograded notebook shows that their tests ran without the course's
    grader: the hidden tests call into the grader (``mnist_grader``), which runs them outside the
    student's kernel; plain nbgrader, as Formgrader's Autograde may still be, cannot."""
    course = instructor_course(trip.hub)
    return [student for student in students
            if NO_GRADER in (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()]


def grade_by_hand(trip: RoundTrip, teacher: Person, student: str, points: float, answer: str | None) -> None:
    """Formgrader's Manual Grading of the written answer: the rubric is on the page; the score is saved."""
    page = teacher.page
    page.goto(teacher.server.url(f"formgrader/manage_students/{student}/{ASSIGNMENT}"))
    page.locator("#main-table tr", has_text=ASSIGNMENT).locator("a").first.click()
    score = page.locator(f"input.score#{WRITTEN}")
    expect(score).to_be_visible(timeout=60_000)
    cell = page.locator(".nbgrader_cell", has=score)
    if answer:
        expect(cell).to_contain_text(answer)
    rubric = page.locator("#notebook-container .text_cell", has_text=RUBRIC_LINE)
    expect(rubric).to_have_count(1)
    # Formgrader binds the field to its grade model once the page's own requests are done; a value
    # typed before that is overwritten by the model and never saved, so wait for them, and type again
    # if leaving the field saved nothing (a busy machine).
    page.wait_for_load_state("networkidle")
    for attempt in range(3):
        score.fill(f"{points:g}")
        try:
            with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT",
                                      timeout=20_000) as saved:
                score.press("Tab")  # leaving the field saves the score
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise AssertionError(f"Formgrader never saved the hand grade of {student}") from None
            score.click()
    assert saved.value.ok, f"Formgrader did not save the score: {saved.value.status}"
    rubric.scroll_into_view_if_needed()
    shoot(trip.shots, teacher, f"manual grading of {role(student)} with the rubric")


def release_feedback(trip: RoundTrip, teacher: Person) -> None:
    """Formgrader's Manage Assignments: Generate Feedback, then Release Feedback."""
    open_lab(teacher.page, teacher.server)
    frame = formgrader(teacher)
    row = frame.locator("#main-table tr", has_text=ASSIGNMENT)
    formgrader_action(frame, row, "generate-feedback", timeout_ms=GRADING_TIMEOUT_MS)
    formgrader_action(frame, row, "release-feedback")
    shoot(trip.shots, teacher, "feedback generated and released")


def read_own_feedback(trip: RoundTrip, student: Person) -> tuple[str, str, int, int]:
    """Assignment List > Fetch Feedback, then the feedback page opened from the file browser;
    returns the page's text, its table of contents' (the tasks' titles and scores), how many
    equations it holds as MathML and how many MathJax scripts it loads."""
    student.page.bring_to_front()
    open_lab(student.page, student.server)
    fetch_feedback(student.page, ASSIGNMENT)
    open_file_from_browser(student.page, f"{ASSIGNMENT}.html")
    viewer = student.page.frame_locator(".jp-MainAreaWidget:visible iframe")
    expect(viewer.locator("body")).to_contain_text("Score:", timeout=30_000)
    shoot(trip.shots, student, "own feedback")
    return (viewer.locator("body").inner_text(), viewer.locator("#toc").inner_text(), viewer.locator("math").count(),
            viewer.locator("script[src*='mathjax' i]").count())


def reached_by_url(trip: RoundTrip, student: Person, other: str) -> list[str]:
    """What `student` gets of `other`'s home, the exchange's inbound and its feedback, by URL:
    through the other's server, and through the student's own (out of its root)."""
    notebook_of_other = Path(pwd.getpwnam(other).pw_dir) / ASSIGNMENT
    up = "/".join([".."] * len(Path(pwd.getpwnam(student.name).pw_dir).parts[1:]))
    attempts = [f"user/{other}/api/contents/{ASSIGNMENT}", f"user/{other}/files/{NOTEBOOK}",
                f"user/{other}/api/contents/{ASSIGNMENT}/feedback"]
    for target in (notebook_of_other, trip.exchange / "inbound", trip.exchange / "feedback"):
        relative = f"{up}{target}"
        attempts += [f"user/{student.name}/api/contents/{relative}", f"user/{student.name}/files/{relative}",
                     f"user/{student.name}/api/contents/{urllib.parse.quote(relative, safe='')}"]
    # the same kinds of request reach the student's own work: a refusal below means "not yours"
    assert served(student, f"user/{student.name}/api/contents/{NOTEBOOK}"), "the student cannot read their own notebook"
    return [what for path in attempts if (what := served(student, path))]


def test_course_round_trip_on_the_hub(chromium, hub, request):
    started = time.monotonic()
    trip = RoundTrip(hub=hub, shots=Screenshots(None, SCREENSHOTS / request.node.name), people={})
    instructor, (student_a, student_b) = trip.settings["instructor"], trip.settings["students"]
    try:
        # 1. The instructor releases.
        teacher = trip.person(chromium, instructor)
        release_from_formgrader(trip, teacher)

        # 2. A: the reference answers, validated; B: the reference with one mistake.
        reference, with_mistake = student_notebooks(hub)
        student_submits(trip, trip.person(chromium, student_a), reference, check=True)
        student_submits(trip, trip.person(chromium, student_b), with_mistake, check=False)
        inbound = sorted(p.name.split("+")[0] for p in (trip.exchange / "inbound").iterdir())
        assert inbound == sorted([student_a, student_b]), inbound

        # 3. The instructor collects and autogrades: A keeps every autograded point, B loses the
        # softmax test's and nothing else.
        collect_and_autograde(trip, teacher, [student_a, student_b])
        max_points = max_scores(hub)
        graded = submissions(hub)
        autograded_cells = [name for name in max_points if name != WRITTEN]
        a_cells, b_cells = graded[student_a][2], graded[student_b][2]
        assert all(a_cells[name] == max_points[name] for name in autograded_cells), \
            f"student A (reference answers) lost autograded points: {a_cells} of {max_points}"
        assert b_cells[MISTAKE_TEST] < max_points[MISTAKE_TEST], f"B's softmax mistake kept its points: {b_cells}"
        assert all(b_cells[n] == max_points[n] for n in autograded_cells if n != MISTAKE_TEST), \
            f"B lost points beyond the softmax test: {b_cells}"

        # ... grades the written answers by hand, seeing the rubric, then releases feedback.
        grade_by_hand(trip, teacher, student_a, HAND_SCORES[0], WRITTEN_ANSWER)
        grade_by_hand(trip, teacher, student_b, HAND_SCORES[1], None)
        graded = submissions(hub)
        assert [graded[s][2][WRITTEN] for s in (student_a, student_b)] == list(HAND_SCORES), graded
        assert graded[student_a][0] == graded[student_a][1], f"A is not at full marks: {graded[student_a]}"
        release_feedback(trip, teacher)

        # 4. Each student reads their own scores in their own feedback.
        for student in (student_a, student_b):
            score, max_score, cells = graded[student]
            text, toc, equations, mathjax = read_own_feedback(trip, trip.people[student])
            shown = sorted((float(a), float(b)) for a, b in re.findall(r"Score: ([\d.]+) / ([\d.]+)", toc))
            expected = sorted((cells[name], max_points[name]) for name in max_points)
            assert shown == expected, f"{student}'s feedback shows scores {shown}, the gradebook {expected}"
            assert f"Score: {score:.1f} / {max_score:.1f}" in text, f"{student}'s feedback lacks the total {score}"
            assert RUBRIC_LINE not in text and "BEGIN HIDDEN TESTS" not in text, f"{student}'s feedback shows grading secrets"
            # the readable page (Formgrader's Generate Feedback with the course's config): tests
            # titled by their task, equations as MathML, no MathJax from a CDN
            assert SOFTMAX_TITLE in toc and "Test cell" not in toc, f"{student}'s feedback lists: {toc}"
            assert equations > 0 and mathjax == 0, f"{student}'s feedback: {equations} MathML equations, {mathjax} MathJax"

        # 5. A cannot reach B's work, the exchange's inbound, or B's feedback.
        a = trip.people[student_a]
        a.page.bring_to_front()
        reached = reached_by_url(trip, a, student_b)
        a.page.goto(f"{hub.url}/user/{student_b}/lab")
        shoot(trip.shots, a, "opening the other student's server")
        expect(a.page.locator("#jp-main-dock-panel")).to_have_count(0)
        assert not reached, "student A reached what is not theirs:\n" + "\n".join(reached)
        entry = pwd.getpwnam(student_a)
        for target in (Path(pwd.getpwnam(student_b).pw_dir) / ASSIGNMENT, trip.exchange / "inbound"):
            proc = subprocess.run(["ls", str(target)], user=entry.pw_uid, group=entry.pw_gid, extra_groups=[],
                                  capture_output=True, text=True)
            assert proc.returncode != 0, f"{student_a} can list {target} as a Unix user: {proc.stdout[:300]}"
    except BaseException:
        for person in trip.people.values():
            try:
                shoot(trip.shots, person, "failure")
            except Exception:  # noqa: BLE001 - a dead page must not hide the real failure
                pass
        raise
    finally:
        for person in trip.people.values():
            person.page.context.close()
        print(f"hub round trip: {time.monotonic() - started:.0f} s in the browser")


def max_scores(hub) -> dict[str, float]:
    """grade cell -> its points, from the instructor's gradebook."""
    course = instructor_course(hub)
    with Gradebook(f"sqlite:///{course}/gradebook.db") as gradebook:
        assignment = gradebook.find_assignment(ASSIGNMENT)
        return {cell.name: cell.max_score for nb in assignment.notebooks for cell in nb.grade_cells}
