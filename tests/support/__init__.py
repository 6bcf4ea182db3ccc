"""Helpers shared by the test suites of every part (real servers started on loopback)."""
