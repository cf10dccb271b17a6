"""Label-free Leiden resolution choice and absorption of tiny mixture clusters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from biostruct.errors import InputError
from biostruct.multiomics.clusters import absorb_small_clusters, leiden_label_free


def test_absorb_small_clusters_moves_cells_to_next_choice():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=50) * 0.1
    probs[:30, 0] += 1.0
    probs[30:48, 1] += 1.0
    probs[48:, 2] += 1.0  # 2 cells
    probs[48, 1] += 0.5  # second choice: cluster 1
    probs[49, 0] += 0.5  # second choice: cluster 0
    lab = absorb_small_clusters(probs, min_size=5)
    assert set(lab) == {0, 1}
    assert lab[48] == lab[30] and lab[49] == lab[0]
    assert (absorb_small_clusters(probs, min_size=1) == probs.argmax(1)).all()


def test_leiden_label_free_finds_separated_groups():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 100)
    centres = np.array([[0, 0, 0, 0], [8, 0, 0, 0], [0, 8, 0, 0]], dtype=float)
    z = centres[truth] + rng.normal(size=(300, 4))
    labels, res, table = leiden_label_free(z, seed=0)
    assert table["silhouette"].max() == table.set_index("resolution").loc[res, "silhouette"]
    assert adjusted_rand_score(truth, labels) > 0.95
    # the finest resolution over-splits, and the silhouette rejects it
    assert table["n_clusters"].iloc[-1] > 3 and res != table["resolution"].iloc[-1]


def test_leiden_label_free_rejects_bad_latent():
    with pytest.raises(InputError, match="finite"):
        leiden_label_free(np.full((10, 2), np.nan))
