"""Fixtures of the workflow tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from wfhelpers import TINY, biostruct


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Both pipelines run once on the tiny config (shared by the tests that inspect results)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    proc = biostruct(
        "run", "all", "--config", str(TINY), "--directory", str(workdir), "--cores", "1"
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return workdir
