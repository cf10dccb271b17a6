"""Fixtures for the datasets tests: the shared trajectory files and their gene names."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def grn_dir(data_dir: Path) -> Path:
    return data_dir / "grn"
