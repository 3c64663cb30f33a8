"""Mistake libraries, one module per assignment id (format: ``instructor/library.py``)."""
