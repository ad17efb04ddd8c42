"""Tests of the Django app; Django is configured by this directory's conftest only."""
