"""DAG-VAE interrupted after the parent component and resumed (load + train the rest) gives the
latents of an uninterrupted run: each component draws from its own seeded stream (issue #14)."""

from __future__ import annotations

import numpy as np
from sectiny import tiny_mudata

from biostruct.multiomics.model import DAGVAE


def test_resume_after_the_parent_equals_an_uninterrupted_run(tmp_path):
    full = DAGVAE(tiny_mudata(), n_latent=2, seed=3)
    full.train(4, progress=False)

    cut = DAGVAE(tiny_mudata(), n_latent=2, seed=3)
    assert cut.graph.order == ["atac", "rna"]
    cut.train(4, components=["atac"], checkpoint_dir=tmp_path / "ckpt", progress=False)
    resumed = DAGVAE.load(tmp_path / "ckpt", tiny_mudata(), device="cpu")
    resumed.train(4, components=["rna"], progress=False)

    for c in ("atac", "rna"):
        a = full.get_latent_representation(c)
        b = resumed.get_latent_representation(c)
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0, err_msg=c)
