"""Exceptions a user can act on.

MueError                 base; the CLI prints its message on one line and exits with code 2
├── DataError            a data file is missing, unreadable, malformed or fails its checksum
├── ConfigError          unknown task/grader/backend, bad option, settings that clash with a stored run
└── BackendUnavailable   a model file, engine or endpoint cannot be reached or loaded
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """A message that quotes hostile text (a server's reply, a data field) as one printable line."""
    return "".join(ch if ch.isprintable() else " " for ch in " ".join(text.split()))


class MueError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class DataError(MueError):
    pass


class ConfigError(MueError):
    pass


class BackendUnavailable(MueError):
    pass
