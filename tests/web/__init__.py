"""Moved to ``tests/server/web``; this package only keeps ``tests.web.helpers`` importable
for branches written before the move (remove once all are merged)."""
