"""A student's workspace: a folder outside the course with the assignment fetched from the exchange.

The course folder belongs to the instructor (solutions in ``source/``, the gradebook, submissions,
feedback). A student works somewhere else: the workspace holds an ``nbgrader_config.py`` that names
the course and its exchange (where nbgrader's fetch and submit go), the assignment as
``nbgrader fetch_assignment`` delivers it, and the lecture notebook. JupyterLab is started rooted at
the workspace (``make student-lab``), so nothing of the course can be opened from it.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

from mnist_grader.course import Course, CourseError

LECTURE = Path("notebooks") / "lecture_mlp_mnist.ipynb"
WORKSPACE_CONFIG = """\
# Written by `make student`: the course this workspace belongs to and where its exchange is.
# nbgrader's Assignment List (fetch, submit) and Validate button read it.
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
"""


def exchange_root(course: Course) -> Path:
    """The exchange folder the course's ``nbgrader_config.py`` names (absolute)."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    root = config.get("Exchange", {}).get("root")
    if not root:
        raise CourseError(f"{course.root / 'nbgrader_config.py'} sets no c.Exchange.root: students "
                          f"need a shared exchange folder to fetch from")
    return (course.root / root).resolve()


def check_outside(course: Course, workspace: Path) -> None:
    """Refuse a workspace inside the course, or a course inside the workspace.

    Raises:
        CourseError: saying which folder to use instead.
    """
    course_root, workspace = course.root.resolve(), workspace.resolve()
    if workspace == course_root or course_root in workspace.parents:
        raise CourseError(f"the student workspace {workspace} is inside the course {course_root}: "
                          f"a student's JupyterLab must not reach the course's solutions; choose a "
                          f"folder outside it, e.g. STUDENT_DIR={course_root.parent / 'mnist-student'}")
    if workspace in course_root.parents:
        raise CourseError(f"the student workspace {workspace} contains the course {course_root}; "
                          f"choose a folder beside the course, not above it")


def create_workspace(course: Course, assignment: str, workspace: Path, env_bin: Path) -> list[str]:
    """Create or refresh the workspace; a student's existing work is never touched.

    Args:
        course: the course (its assignment must already be released into the exchange).
        assignment: the assignment to fetch.
        workspace: the student's folder (created when missing).
        env_bin: the student environment's ``bin`` (its ``nbgrader`` fetches).

    Returns:
        Lines saying what was done, for the person running ``make student``.
    """
    check_outside(course, workspace)
    exchange = exchange_root(course)
    released = exchange / course.course_id / "outbound" / assignment
    if not released.is_dir():
        raise CourseError(f"{assignment!r} is not released into the exchange ({released} is "
                          f"missing): run `make publish` in the course first")
    workspace.mkdir(parents=True, exist_ok=True)
    done = []
    (workspace / "nbgrader_config.py").write_text(
        WORKSPACE_CONFIG.format(course_id=course.course_id, exchange=str(exchange)))
    if (workspace / assignment).exists():
        done.append(f"{workspace / assignment} already there: kept as it is (your work)")
    else:
        proc = subprocess.run([str(env_bin / "nbgrader"), "fetch_assignment", assignment],
                              cwd=workspace, capture_output=True, text=True)
        if proc.returncode != 0 or not (workspace / assignment).is_dir():
            raise CourseError(f"nbgrader fetch_assignment {assignment} failed in {workspace}:\n"
                              f"{proc.stdout[-1500:]}\n{proc.stderr[-2500:]}")
        done.append(f"fetched {assignment} into {workspace / assignment}")
    lecture = workspace / "lecture" / LECTURE.name
    if not lecture.exists() and (course.root / LECTURE).is_file():
        lecture.parent.mkdir(exist_ok=True)
        shutil.copy2(course.root / LECTURE, lecture)
        done.append(f"copied the lecture notebook to {lecture}")
    return done
