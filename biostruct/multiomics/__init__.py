"""DAG-structured multi-omics VAEs (CAVACHON-style).

The user writes which modality depends on which as a DAG of components (e.g. ATAC -> RNA); each
component has its own latent space with a learnable Gaussian-mixture prior, children decode from
their parents' latents, and the model gives per-component embeddings, clusters and differential
analyses::

    import biostruct as bs
    mdata = bs.datasets.load("snareseq_demo")
    model = bs.multiomics.dag_vae(mdata, max_epochs=50)   # graph ATAC -> RNA by default
    mdata.obsm["X_dagvae_rna_hat"]   # the integrated latent (RNA + its ATAC parent)
    mdata.obs["dagvae_cluster_rna"]
"""

from __future__ import annotations

from biostruct.multiomics.analysis import knn_purity
from biostruct.multiomics.api import dag_vae
from biostruct.multiomics.clusters import absorb_small_clusters, leiden_label_free
from biostruct.multiomics.data import filter_empty
from biostruct.multiomics.graph import (
    LIKELIHOODS,
    ComponentSpec,
    DAGSpec,
    LinkSpec,
    ModalitySpec,
    default_graph,
    describe_graph,
    infer_role,
    infer_roles,
    parse_graph,
)
from biostruct.multiomics.links import link_table
from biostruct.multiomics.model import DAGVAE
from biostruct.multiomics.training import TrainConfig

__all__ = [
    "DAGVAE",
    "LIKELIHOODS",
    "ComponentSpec",
    "DAGSpec",
    "LinkSpec",
    "ModalitySpec",
    "TrainConfig",
    "absorb_small_clusters",
    "dag_vae",
    "default_graph",
    "describe_graph",
    "filter_empty",
    "infer_role",
    "infer_roles",
    "knn_purity",
    "link_table",
    "leiden_label_free",
    "parse_graph",
]
