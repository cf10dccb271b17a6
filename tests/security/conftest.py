"""Fixtures of the security tests: a tiny GRN data set and a malicious pickle factory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture()
def tiny_adata():
    """8 genes, 6 trajectories x 5 time points, smooth values in [0, 1], a signed prior."""
    from sectiny import tiny_grn_adata

    return tiny_grn_adata()


class Payload:
    """Unpickling this runs ``touch <marker>`` through the shell."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def write_malicious(tmp_path):
    """``write_malicious(path, marker)`` writes a torch file whose unpickling creates
    ``marker``; a test first checks that the payload is live (see test_payload_is_live)."""
    import torch

    def write(path: Path, marker: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"field": Payload(marker), "epoch": 1}, path)
        return path

    return write
