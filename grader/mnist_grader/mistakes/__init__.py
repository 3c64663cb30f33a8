"""Mistake libraries, one module per assignment id (format: ``grader/mnist_grader/library.py``)."""
