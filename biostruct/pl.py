"""Scanpy-style plots of results written by :mod:`biostruct.tl` (matplotlib figures)."""

from __future__ import annotations

from biostruct.grn.plotting import grn_heatmap, grn_network, grn_training, grn_trajectories
from biostruct.multiomics.plotting import dag_graph, dagvae_links, dagvae_training, dagvae_umap

__all__ = [
    "dag_graph",
    "dagvae_links",
    "dagvae_training",
    "dagvae_umap",
    "grn_heatmap",
    "grn_network",
    "grn_training",
    "grn_trajectories",
]
