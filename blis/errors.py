"""Errors shown to users as one line (CLI exit code 2)."""


class BlisInputError(ValueError):
    """Bad user input: the message names the field and what is allowed."""
