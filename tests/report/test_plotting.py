"""The matplotlib helpers (bs.pl): heatmap of genes with edges, network labels that do not
overlap, categorical colours that stay distinct past 10 categories."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from biostruct.errors import InputError  # noqa: E402
from biostruct.grn import plotting as gp  # noqa: E402
from biostruct.multiomics import plotting as mp  # noqa: E402


def _sparse_network(n: int = 100, with_edges: int = 11):
    import anndata as ad

    W = np.zeros((n, n))
    src = np.arange(with_edges - 1)
    W[src, src + 1] = np.linspace(1, 2, src.size) * np.where(src % 2, 1, -1)
    np.fill_diagonal(W, -1.0)  # self-effects are not edges
    adata = ad.AnnData(np.zeros((2, n)), var=pd.DataFrame(index=[f"g{i}" for i in range(n)]))
    adata.varp["grn"] = W
    adata.uns["grn"] = {}
    return adata


def test_heatmap_shows_only_genes_with_edges():
    adata = _sparse_network()
    ax = gp.grn_heatmap(adata)
    (im,) = ax.get_images()
    assert im.get_array().shape == (11, 11)
    labels = {t.get_text() for t in ax.get_xticklabels()}
    assert labels == {f"g{i}" for i in range(11)}
    assert np.all(np.diag(im.get_array()) == 0)  # the -1 self-effects are left out
    plt.close(ax.figure)
    with pytest.raises(InputError, match="genes"):
        gp.grn_heatmap(adata, genes=["g1", "nope"])


def test_network_labels_do_not_overlap():
    import anndata as ad

    rng = np.random.default_rng(0)
    n = 80
    W = rng.normal(0, 1, (n, n)) * (rng.uniform(size=(n, n)) < 0.05)
    names = [f"GENE_NAME_{i}" for i in range(n)]  # long labels: many collide on the circle
    adata = ad.AnnData(np.zeros((2, n)), var=pd.DataFrame(index=names))
    adata.varp["grn"] = W
    adata.uns["grn"] = {}
    ax = gp.grn_network(adata, top=80)
    fig = ax.figure
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if t.get_text()]
    shown = [t.get_window_extent(r) for t in labels if t.get_visible()]
    assert len(shown) >= 10
    assert len(shown) < len(labels)  # some had to go: the check below is not vacuous
    assert "overlapping labels left out" in ax.get_title()
    for i, a in enumerate(shown):
        for b in shown[i + 1 :]:
            assert not a.overlaps(b)
    plt.close(fig)


def test_categorical_colours_distinct_past_10(dagvae_mdata):
    mdata, _ = dagvae_mdata
    assert len(set(mp.categorical_colours(15))) == 15
    assert len(set(mp.categorical_colours(40))) == 40
    rng = np.random.default_rng(0)
    mdata.obs["many"] = pd.Categorical(rng.integers(0, 15, mdata.n_obs).astype(str))
    fig = mp.dagvae_umap(mdata, "dagvae", "rna", color="many")
    ax = fig.axes[0]
    colours = [to_hex(c.get_facecolor()[0]) for c in ax.collections]
    assert len(colours) == 15 and len(set(colours)) == 15
    plt.close(fig)
