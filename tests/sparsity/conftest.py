"""Fixtures of the sparsification-core tests."""

from __future__ import annotations

import pytest
import torch
from sparsity_helpers import TinyNet
from torch import nn


@pytest.fixture
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return TinyNet()


@pytest.fixture
def net_cls() -> type[nn.Module]:
    return TinyNet


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
