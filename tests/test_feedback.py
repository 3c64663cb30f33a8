"""Feedback (``python -m mnist_grader feedback``): nbgrader's own pages, without any hidden test."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from tests.grader_course import grader_cli, private_jupyter_dirs  # noqa: F401 (autouse fixture)


def html_text(page: Path) -> str:
    """What a browser shows of a feedback page: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))


def hidden_test_lines(source_notebook: Path) -> list[str]:
    """The secret lines of the hidden tests (long enough to be worth finding), stripped."""
    lines = []
    for cell in nbformat.read(str(source_notebook), as_version=4).cells:
        inside = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) >= 12:
                lines.append(line.strip())
    return lines


def leaks(text: str, secrets: list[str]) -> list[str]:
    """The secrets found in ``text`` in any form: as written, reversed, or split over lines."""
    flat = re.sub(r"\s+", "", text)
    found = []
    for secret in secrets:
        compact = re.sub(r"\s+", "", secret)
        if secret in text or compact in flat or compact[::-1] in flat:
            found.append(secret)
    return found




def test_feedback_has_no_hidden_tests_but_keeps_the_messages(checked_tiny):
    course, _ = checked_tiny
    grader_cli(course, "feedback", "--assignment", "tiny")
    secrets = hidden_test_lines(course / "source" / "tiny" / "tiny.ipynb")
    assert len(secrets) >= 5
    pages = sorted((course / "feedback").glob("*/tiny/tiny.html"))
    assert len(pages) >= 10
    for page in pages:
        text = html_text(page)
        assert not leaks(text, secrets + ["HIDDEN_SENTINEL"]), page
    wrong_sign = html_text(course / "feedback" / "mistake-squares-abs" / "tiny" / "tiny.html")
    # the trusted run's message for the failing hidden check, without its source
    assert "a hidden check of this task failed: check negative numbers" in wrong_sign
    printed = (course / "autograded" / "cheat-print-hidden-tests" / "tiny" / "tiny.ipynb").read_text()
    assert "tsil a nruter tsum serauqs" in printed  # it printed the visible tests, reversed...
    assert not leaks(printed, secrets)  # ...and no hidden test: the kernel never had one

    # the other side: plain nbgrader runs hidden tests in the student's kernel, so that cheat
    # prints them, reversed, into what feedback shows
    plain = tmp_path_factory_course(course)
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "tiny", "--force",
                    "--student", "cheat-print-hidden-tests"], cwd=plain, check=True,
                   capture_output=True, env=dict(os.environ, PATH=os.path.dirname(sys.executable)
                                                 + os.pathsep + os.environ["PATH"]))
    leaked = (plain / "autograded" / "cheat-print-hidden-tests" / "tiny" / "tiny.ipynb").read_text()
    assert leaks(leaked, secrets), "plain nbgrader should leak the hidden tests to that cheat"


def tmp_path_factory_course(course: Path) -> Path:
    """A copy of a graded course beside it, for plain nbgrader runs that must not touch it."""
    copy = course.parent / f"{course.name}-plain"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(course, copy, ignore=shutil.ignore_patterns("autograded", "feedback"))
    config = copy / "nbgrader_config.py"
    config.write_text(config.read_text().replace(str(course), str(copy)))
    return copy
