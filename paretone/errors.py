"""User-facing errors: the CLI prints their message as one line and exits with code 2.

Raise these for problems the user can fix (a bad path, a corrupt file, an invalid config).
The message must name the offending thing and say how to fix it; programming errors stay
ordinary exceptions so that their tracebacks remain visible.
"""

from collections.abc import Iterable


class ParetoneError(Exception):
    """Base class of every error caused by the user's input."""


class DataError(ParetoneError):
    """The dataset is missing, malformed or unreadable."""


class CheckpointError(ParetoneError):
    """A checkpoint directory is missing, corrupt or of a format paretone does not load."""


class ConfigError(ParetoneError):
    """A configuration value is invalid."""


def names(values: Iterable[object]) -> str:
    """Names from the user's input, sorted, for a one-line message: one holding a newline or other
    unprintable character is shown quoted (``'\\n'``), so it cannot break the line."""
    shown = (text if text.isprintable() else repr(text) for text in map(str, values))
    return ", ".join(sorted(shown))
