"""Exception types that biostruct users see.

Every error raised on bad input names the offending field (a file, a column, a config key, an
argument) and says what would fix it. Catch :class:`BiostructError` to handle all of them.
"""

from __future__ import annotations

__all__ = [
    "BiostructError",
    "InputError",
    "DataFormatError",
    "PriorError",
    "ConfigError",
    "GraphError",
    "ChecksumError",
    "DatasetNotFoundError",
    "SolverError",
    "NotFittedError",
]


class BiostructError(Exception):
    """Base class of every error biostruct raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None, fix: str | None = None) -> None:
        self.field = field
        self.fix = fix
        parts = []
        if field:
            parts.append(f"{field}: ")
        parts.append(message)
        if fix:
            parts.append(f" Fix: {fix}")
        super().__init__("".join(parts))


class InputError(BiostructError, ValueError):
    """An argument or in-memory data object is unusable (wrong shape, NaN, negative counts, ...)."""


class DataFormatError(BiostructError, ValueError):
    """A file on disk does not follow the expected format (ragged rows, non-numeric cells, ...)."""


class PriorError(InputError):
    """A prior-knowledge network cannot be aligned with the data (unknown genes, all zero, ...)."""


class ConfigError(BiostructError, ValueError):
    """A configuration value (YAML, dict or keyword) is unknown, misspelled or out of range."""


class GraphError(ConfigError):
    """A DAG specification is invalid (a cycle, an unknown component or modality, duplicates)."""


class ChecksumError(BiostructError, OSError):
    """A downloaded or local file does not match the sha256 recorded in its manifest."""


class DatasetNotFoundError(BiostructError, LookupError):
    """A dataset name is unknown, or its files are neither local nor downloadable."""


class SolverError(BiostructError, RuntimeError):
    """The ODE solver failed (step size underflow, non-finite state)."""


class NotFittedError(BiostructError, RuntimeError):
    """A result was requested from a model that has not been trained yet."""
