"""Read the SNARE-seq fixture (scMoMaT MOp batch 1) and build small paired subsamples."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import scipy.sparse as sp


def read_snareseq(data_dir: Path) -> mudata.MuData:
    """Full SNARE-seq set as MuData (cells x features, raw counts, CSR)."""
    d = Path(data_dir) / "multiomics" / "snareseq_mop"
    meta = pd.read_csv(d / "meta_c1.csv", index_col=0)
    obs = pd.DataFrame(
        {
            "batch": meta["Batch"].astype("category"),
            "label": meta["cluster (remapped)"].astype("category"),
            "label_fine": meta["Ident"].astype("category"),
        },
        index=meta.index.astype(str),
    )
    genes = pd.read_csv(d / "genes.txt", header=None)[0].astype(str).to_numpy()
    peaks = pd.read_csv(d / "regions.txt", header=None)[0].astype(str).to_numpy()
    rna = sp.csr_matrix(sp.load_npz(d / "GxC1.npz").T, dtype=np.float32)
    atac = sp.csr_matrix(sp.load_npz(d / "RxC1.npz").T, dtype=np.float32)
    a_rna = ad.AnnData(rna, obs=obs.copy(), var=pd.DataFrame(index=genes))
    a_atac = ad.AnnData(atac, obs=obs.copy(), var=pd.DataFrame(index=peaks))
    md = mudata.MuData({"rna": a_rna, "atac": a_atac})
    for c in obs.columns:
        md.obs[c] = obs[c]
    return md


def subsample(md: mudata.MuData, n_cells: int, n_peaks: int, seed: int = 0) -> mudata.MuData:
    """Random cells (without empty cells) and the ``n_peaks`` most frequently open peaks."""
    rng = np.random.default_rng(seed)
    rna, atac = md.mod["rna"], md.mod["atac"]
    ok = (np.diff(rna.X.indptr) > 0) & (np.diff(atac.X.indptr) > 0)
    cells = np.sort(rng.choice(np.nonzero(ok)[0], size=n_cells, replace=False))
    r = rna[cells].copy()
    a = atac[cells].copy()
    freq = np.asarray((a.X > 0).sum(0)).ravel()
    top = np.sort(np.argsort(-freq)[:n_peaks])
    a = a[:, top].copy()
    keep = (np.diff(a.X.indptr) > 0) & (np.diff(r.X.indptr) > 0)
    gkeep = np.asarray((r.X[keep] > 0).sum(0)).ravel() > 0
    out = mudata.MuData({"rna": r[keep][:, gkeep].copy(), "atac": a[keep].copy()})
    for c in ("batch", "label", "label_fine"):
        out.obs[c] = md.obs[c].reindex(out.obs_names)
    return out
