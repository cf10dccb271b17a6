"""Scanpy-style plots of results written by :mod:`biostruct.tl` (matplotlib figures)."""

from __future__ import annotations

from biostruct.grn.plotting import grn_heatmap, grn_network, grn_training, grn_trajectories

__all__ = ["grn_heatmap", "grn_network", "grn_training", "grn_trajectories"]
