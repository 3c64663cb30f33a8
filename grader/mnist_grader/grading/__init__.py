"""Grading every submission of an assignment: scratch courses, sandboxed processes, workers, merge.

Each module's docstring opens by naming the process its code runs in (see ARCHITECTURE.md).
"""
