"""The errors a `jettag` command reports as `jettag <stage>: error: ...` (exit 2).

Kept apart from the stages so that any module can raise them without importing torch or
the readers.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration that does not match the schema or refers to something undefined."""


class InputError(ValueError):
    """An input file that cannot be read as a jet/track collection; the message names it."""


class TrainingInterruptedError(RuntimeError):
    """SIGTERM (a batch system's warning before a kill) arrived; last.pt holds the state."""
