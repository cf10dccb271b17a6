"""Datasets: readers/writers, checksum-verified loaders, embedded defaults, the SIM690 simulator.

Readers and writers::

    adata = bs.datasets.read_trajectories("test_10traj.csv", gene_names="gene_names.csv")
    bs.datasets.write_trajectories(adata, "out.csv")
    prior = bs.datasets.read_prior("prior.csv", adata.var_names)

Datasets (``bs.datasets.list()``; ``bs.datasets.catalog()`` marks the embedded ones)::

    adata = bs.datasets.load("sim690")        # files from BIOSTRUCT_DATA_DIR, cache or download
    paths = bs.datasets.fetch("snareseq_mop") # verified local paths only

What the loaders return:

- ``sim690``, ``sim350``: the 10 noise-free test trajectories; ``obs["trajectory"]`` (categorical
  str), ``obs["time"]``, ``obs["split"]``; ``var["is_input"]`` (constant input genes);
  ``varp["true_network"]`` (signed, regulator rows) and ``varp["prior_noise_{0.0,0.025,0.05,0.1}"]``.
- ``hema_b``: B-lineage train (2 samples) + test (3 samples) trajectories, ``obs["split"]``,
  trajectory ids ``train_0``, ..., ``test_2``; ``varp["prior"]`` (binary motif prior).
  ``hema_mono``: monocyte train trajectories (no public test set), ``varp["prior"]``.
- ``breast500``: one 186-point pseudotime trajectory; ``varp["prior"]`` (signed +-0.5 motif
  prior); ``varp["validation_network"]`` (binary ChIP-seq edges among the 500 genes).
  ``breast500_split``: the 178 training points (``train_0``) and the 8 middle test points
  (``test_0``), ``obs["split"]``, same ``varp``.
- ``snareseq``: MuData ``rna`` (cells x 1,677 genes, int counts, CSR) and ``atac`` (cells x
  25,734 peaks, CSR); ``obs`` ``batch``, ``label`` (15 coarse), ``label_fine`` (23) in both
  modalities and globally; ``uns["gene_peak_links"]`` (genes x peaks CSR).
- ``pbmc_multiome_tiny``: the muon test MuData (rna, atac), 1,000 cells.
- ``pbmc_citeseq``: MuData ``rna`` (200 x 16,581 counts) and ``prot`` (200 x 29 protein counts,
  from the original ``obsm["protein_expression"]``).

Embedded (no download, no data directory; ``bs.datasets.list(embedded=True)``):

- ``snareseq_demo``: MuData like ``snareseq`` for a label-stratified subsample of 2,000 cells,
  all 1,677 genes and the 4,000 most frequently accessible peaks (built by
  ``python -m biostruct.datasets.build_embedded``).
- ``sim690_demo``: ``simulate_sim690(20, seed=0)``.

Simulation::

    adata = bs.datasets.simulate_sim690(150, noise_sd=0.025, seed=0)
    noisy = bs.datasets.corrupt_prior(adata.varp["true_network"], noise=0.05, seed=0)

Every returned object carries ``uns["dataset"]`` (name, loader, license, citation, per-file
path/sha256/url).
"""

from __future__ import annotations

from biostruct.datasets.access import catalog, fetch, load
from biostruct.datasets.access import list_datasets as list  # noqa: A001
from biostruct.datasets.beeline import read_beeline
from biostruct.datasets.priors import edges_to_matrix, matrix_to_edges, read_prior
from biostruct.datasets.simulator import (
    OdeSystem,
    corrupt_prior,
    random_initial_states,
    sim350_system,
    sim690_system,
    simulate_ode_system,
    simulate_sim350,
    simulate_sim690,
)
from biostruct.datasets.trajectories import (
    read_gene_names,
    read_trajectories,
    write_trajectories,
)

__all__ = [
    "OdeSystem",
    "catalog",
    "corrupt_prior",
    "edges_to_matrix",
    "fetch",
    "list",
    "load",
    "matrix_to_edges",
    "random_initial_states",
    "read_beeline",
    "read_gene_names",
    "read_prior",
    "read_trajectories",
    "sim350_system",
    "sim690_system",
    "simulate_ode_system",
    "simulate_sim350",
    "simulate_sim690",
    "write_trajectories",
]
