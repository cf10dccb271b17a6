"""The latent kNN graph works above scanpy's 4,096-cell pynndescent threshold."""

import numpy as np

from biostruct.multiomics.analysis import latent_neighbors


def test_latent_neighbors_large_latent():
    # 5,000 cells take scanpy 1.11's approximate path, which fails on SciPy >= 1.15 sparse arrays.
    z = np.random.default_rng(0).normal(size=(5000, 4))
    tmp = latent_neighbors(z, n_neighbors=10, seed=0)
    conn = tmp.obsp["connectivities"]
    assert conn.shape == (5000, 5000)
    assert conn.nnz >= 5000 * 9
