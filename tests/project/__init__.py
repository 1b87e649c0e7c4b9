"""Tests of the repository as a whole: docs, layout, lower bounds, demo."""
