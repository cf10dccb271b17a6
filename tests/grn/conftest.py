"""Fixtures of the GRN tests: small real files from the shared data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from grn_network_sim import simulate_small_network

NPZ = "grn/sim350/pretrained_dense_phoenix/phoenix_sim350_dense.npz"


@pytest.fixture(scope="session")
def sim350_npz(data_dir: Path) -> Path:
    return data_dir / NPZ


@pytest.fixture(scope="session")
def sim350_truth(data_dir: Path) -> np.ndarray:
    return np.loadtxt(data_dir / "grn/sim350/prior_noise_0.0.csv", delimiter=",")


@pytest.fixture(scope="session")
def small_network():
    return simulate_small_network()
