"""Shared fixtures: the real-data directory and CPU-friendly torch settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The tests build MuData objects as a user would; adopt mudata 0.4's update() behaviour once for
# the suite instead of its FutureWarning on every construction (biostruct's own code sets the
# option locally where it builds MuData).
try:
    import mudata

    mudata.set_options(pull_on_update=False)
except ImportError:  # pragma: no cover - mudata is a core dependency
    pass


def _data_dir() -> Path | None:
    env = os.environ.get("BIOSTRUCT_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``BIOSTRUCT_DATA_DIR`` (CI sets it to ../shared/data); fails loudly when missing."""
    d = _data_dir()
    if d is None:
        pytest.fail(
            "BIOSTRUCT_DATA_DIR is not set and ../shared/data does not exist; "
            "point BIOSTRUCT_DATA_DIR at the shared fixture data."
        )
    os.environ["BIOSTRUCT_DATA_DIR"] = str(d)
    return d


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
