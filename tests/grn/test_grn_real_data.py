"""GRN inference on real single cells ordered by pseudotime within lineages (hema B, DASH data)."""

from __future__ import annotations

import numpy as np
import pytest

import biostruct as bs
from biostruct.grn import GRNModel
from biostruct.grn.solve import one_step_mse


@pytest.fixture(scope="module")
def hema_b(data_dir):
    return bs.datasets.load("hema_b")


def test_hema_b_lineages_dash(hema_b):
    adata = hema_b
    # two training lineages and three test lineages, cells ordered by pseudotime in [0, 1]
    assert adata.n_vars == 529
    assert set(adata.obs["split"]) == {"train", "test"}
    model = GRNModel(adata, "prior", hidden=20, seed=0, device="cpu")
    assert model.test is not None and len(model.test.names) == 3
    untrained = one_step_mse(model.module, model.test.transitions(), model.solver)
    model.train("dash", epochs=6, every=2, batch_size=64)
    trained = model.test_mse()
    # the vector field learned something that carries over to unseen lineages
    assert np.isfinite(trained) and trained < untrained
    # the pruning schedule ran: 70 % at epoch 3, then 10 % of the rest at epoch 4
    assert [e["epoch"] for e in model.events] == [3, 4]
    sp = model.sparsity()["pooled"]
    assert 0.7 < sp < 0.8
    effect = model.effect_matrix()
    assert effect.shape == (529, 529)
    # only edges with a path of surviving weights are non-zero
    assert 0 < np.count_nonzero(effect) < effect.size


def test_hema_b_through_scanpy_api(hema_b):
    adata = hema_b.copy()
    model = bs.tl.infer_grn(adata, prior="prior", method="imp", epochs=4, every=2, seed=0)
    assert adata.varp["grn"].shape == (529, 529)
    np.testing.assert_allclose(np.asarray(adata.varp["grn"]), model.effect_matrix(), rtol=1e-6)
    assert np.isfinite(adata.uns["grn"]["test_mse"])
