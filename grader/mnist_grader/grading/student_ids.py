"""Runs in the grading command (the parent): which student folder names nbgrader can grade.

The others are refused with the reason.

A student id is a folder name the students chose or a collecting script made up, so it can be
anything a file name can be: ``--help``, ``--``, spaces, unicode, ``$(x)``, ``;``. The grader never
puts it on a command line (it goes into the scratch course's config file as a Python string
literal, so nbgrader's option parser never sees it) and never through a shell. What is left are the
ids nbgrader itself reads differently from the folder name: ``CourseDirectory.student_id`` is a file
glob (``*``, ``?``, ``[`` would match other students' folders) and is stripped of white space.
Those, and names with control characters (which would garble the logs and the summary), are refused
with the reason; the run grades everybody else.
"""
from __future__ import annotations

import unicodedata

_GLOB_CHARACTERS = "*?["


def student_id_problem(student: str,
                       rename: str = "rename the folder in submitted/ and grade again") -> str:
    """Why ``student`` cannot be graded as a student id, or "" when it can.

    Args:
        student: the name of a folder in the course's submitted folder.
        rename: what to do about it, the end of the sentence (the default fits submitted/).

    Returns:
        A sentence saying what is wrong and what to do; "" for a usable id.
    """
    if not student or student.strip() != student:
        return (f"the folder name {student!r} starts or ends with white space, which nbgrader "
                f"strips (it would look for another folder): {rename}")
    if any(c in _GLOB_CHARACTERS for c in student):
        return (f"the folder name {student!r} holds a file-glob character (* ? [), which nbgrader "
                f"reads as a pattern that can match other students' folders: {rename}")
    if any(unicodedata.category(c)[0] == "C" for c in student):
        return (f"the folder name {student!r} holds a control or invisible character: {rename}")
    return ""
