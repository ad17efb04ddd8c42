"""Test helpers for applications using creative-services (and for our own suite)."""
