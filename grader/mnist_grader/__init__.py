"""Instructor tooling for the course: example submissions, sandboxed parallel autograding,
clean feedback, grade export and grader QA. Run ``python -m mnist_grader --help``."""
