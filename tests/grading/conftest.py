"""The grading tests: Jupyter and friends write into private folders, never the home folder."""
from tests.grader_course import private_jupyter_dirs  # noqa: F401 (autouse fixture)
