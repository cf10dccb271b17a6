"""Small models shared by the sparsification-core tests."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Two linear layers, a layer norm and a bare parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 10)
        self.norm = nn.LayerNorm(10)
        self.dec = nn.Linear(10, 3)
        self.scale = nn.Parameter(torch.ones(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.tanh(self.norm(self.enc(x)))) @ self.scale
