"""Offline fitting scripts (not part of the installed package); run from a checkout as `python -m tools.<name>`."""
