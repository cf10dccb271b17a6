"""Datasets: trajectory and prior readers/writers, dataset loaders, the SIM690 simulator.

Readers and writers::

    adata = bs.datasets.read_trajectories("test_10traj.csv", gene_names="gene_names.csv")
    bs.datasets.write_trajectories(adata, "out.csv")
    prior = bs.datasets.read_prior("prior.csv", adata.var_names)
"""

from __future__ import annotations

from biostruct.datasets.priors import edges_to_matrix, matrix_to_edges, read_prior
from biostruct.datasets.trajectories import (
    read_gene_names,
    read_trajectories,
    write_trajectories,
)

__all__ = [
    "edges_to_matrix",
    "matrix_to_edges",
    "read_gene_names",
    "read_prior",
    "read_trajectories",
    "write_trajectories",
]
