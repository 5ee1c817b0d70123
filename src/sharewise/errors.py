"""Exceptions that the command line turns into a one-paragraph message and a non-zero exit.

Every error raised for bad *user input* (a config, a data file, a shape) derives from
:class:`SharewiseError`, so the CLI can print it without a traceback while programming errors
still surface with one.
"""

from __future__ import annotations


class SharewiseError(Exception):
    """Base class: a problem the user can fix; the message says what and how."""


class ConfigError(SharewiseError):
    """An invalid configuration (unknown key, wrong type, impossible combination)."""


class DataError(SharewiseError):
    """A missing, corrupt or inconsistent data file or directory."""


class ShapeError(SharewiseError):
    """Modules whose shapes cannot be combined the way a sharing scheme needs."""


class TrainingError(SharewiseError):
    """Training cannot continue (non-finite loss or gradient, ...)."""


class ExportError(SharewiseError):
    """A task cannot be exported as a plain module (the message says why and what would work)."""


class AdaptError(SharewiseError):
    """New tasks cannot be adapted over a parent run's shared blocks (the message says why)."""
