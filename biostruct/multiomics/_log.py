"""The ``biostruct.multiomics`` logger: INFO lines to stderr unless the user configures logging.

Silence it with ``logging.getLogger("biostruct.multiomics").setLevel("WARNING")``.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["logger"]


class _StderrHandler(logging.StreamHandler):
    """Writes to the *current* ``sys.stderr`` (notebooks and pytest replace it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


logger = logging.getLogger("biostruct.multiomics")
if not logger.handlers:
    _h = _StderrHandler()
    _h.setFormatter(logging.Formatter("biostruct.multiomics: %(message)s"))
    logger.addHandler(_h)
    logger.setLevel(logging.INFO)
    # own handler: a user's root configuration does not print every line twice
    logger.propagate = False
