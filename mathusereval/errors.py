"""Exceptions a user can act on.

MueError                 base; the CLI prints its message on one line and exits with code 2
├── DataError            a data file is missing, unreadable, malformed or fails its checksum
├── ConfigError          unknown task/grader/backend, bad option, settings that clash with a stored run
└── BackendUnavailable   a model file, engine or endpoint cannot be reached or loaded
"""

from __future__ import annotations


class MueError(Exception):
    """An error caused by the user's input or environment, reported without a traceback."""


class DataError(MueError):
    pass


class ConfigError(MueError):
    pass


class BackendUnavailable(MueError):
    pass
