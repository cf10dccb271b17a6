"""Loaders that turn a dataset's verified files into analysis-ready AnnData / MuData objects.

Each loader is registered under a name (``bs.datasets.load(name)``) together with the manifest
and file keys it needs; embedded loaders need no files at all.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biostruct.datasets.manifests import Manifest, get_manifest
from biostruct.datasets.priors import read_prior
from biostruct.datasets.trajectories import read_gene_names, read_trajectories

__all__ = ["LoaderSpec", "LOADERS", "register"]

PRIOR_NOISES = ("0.0", "0.025", "0.05", "0.1")


@dataclass(frozen=True)
class LoaderSpec:
    """A named loader: ``build(files, manifest)`` -> object; ``manifest`` None when embedded."""

    name: str
    build: Callable[..., Any]
    manifest: str | None
    keys: tuple[str, ...] = ()
    description: str = ""
    license: str = ""

    @property
    def embedded(self) -> bool:
        return self.manifest is None


LOADERS: dict[str, LoaderSpec] = {}


def register(spec: LoaderSpec) -> LoaderSpec:
    """Add a loader to the registry (name must be new)."""
    if spec.name in LOADERS:
        raise ValueError(f"loader {spec.name!r} registered twice")
    LOADERS[spec.name] = spec
    return spec


def provenance(manifest: Manifest, files: dict[str, Path], loader: str) -> dict[str, Any]:
    """``uns["dataset"]`` record: name, loader, license, citation, source, per-file sha256."""
    return {
        "name": manifest.name,
        "loader": loader,
        "title": manifest.title,
        "license": manifest.license,
        "citation": manifest.citation,
        "source": manifest.source,
        "files": {
            k: {
                "path": f"{manifest.subdir}/{manifest.file(k).path}",
                "sha256": manifest.file(k).sha256,
                "url": manifest.file(k).url or "",
            }
            for k in files
        },
    }


# --- GRN datasets ---------------------------------------------------------------------------


def _sim(files: dict[str, Path], manifest: Manifest, loader: str) -> Any:
    names = read_gene_names(files["gene_names"])
    adata = read_trajectories(files["test"], gene_names=names)
    adata.obs["split"] = pd.Categorical(["test"] * adata.n_obs)
    adata.var["is_input"] = np.array([n.endswith("_input") for n in names])
    for noise in PRIOR_NOISES:
        adata.varp[f"prior_noise_{noise}"] = read_prior(files[f"prior_noise_{noise}"], names)
    adata.varp["true_network"] = adata.varp["prior_noise_0.0"].copy()
    adata.uns["dataset"] = provenance(manifest, files, loader)
    return adata


def _load_sim690(files: dict[str, Path], manifest: Manifest) -> Any:
    return _sim(files, manifest, "sim690")


def _load_sim350(files: dict[str, Path], manifest: Manifest) -> Any:
    return _sim(files, manifest, "sim350")


def _concat_splits(parts: list[tuple[str, Any]]) -> Any:
    """Concatenate trajectory AnnDatas, prefixing trajectory ids with the split name."""
    import anndata as ad

    pieces = []
    cats: list[str] = []
    for split, a in parts:
        a = a.copy()
        labels = [f"{split}_{t}" for t in a.obs["trajectory"].astype(str)]
        cats.extend(f"{split}_{c}" for c in a.obs["trajectory"].cat.categories)
        a.obs["trajectory"] = labels
        a.obs["split"] = split
        a.obs_names = [f"{split}_{n}" for n in a.obs_names]
        pieces.append(a)
    out = ad.concat(pieces, join="outer", merge="same")
    out.obs["trajectory"] = pd.Categorical(out.obs["trajectory"], categories=cats)
    out.obs["split"] = pd.Categorical(out.obs["split"], categories=[s for s, _ in parts])
    return out


def _read_splits(files: dict[str, Path], **splits: str) -> tuple[Any, list[str]]:
    """Read the trajectories of each ``split=file_key`` and concatenate them by split.

    Returns
    -------
    tuple
        The AnnData (see :func:`_concat_splits`) and the gene names of ``files["gene_names"]``.
    """
    names = read_gene_names(files["gene_names"])
    parts = [(split, read_trajectories(files[k], gene_names=names)) for split, k in splits.items()]
    return _concat_splits(parts), names


def _load_hema_b(files: dict[str, Path], manifest: Manifest) -> Any:
    adata, names = _read_splits(files, train="b_train", test="b_test")
    adata.varp["prior"] = read_prior(files["prior"], names)
    adata.uns["dataset"] = provenance(manifest, files, "hema_b")
    return adata


def _load_hema_mono(files: dict[str, Path], manifest: Manifest) -> Any:
    adata, names = _read_splits(files, train="mono_train")
    adata.varp["prior"] = read_prior(files["prior"], names)
    adata.uns["dataset"] = provenance(manifest, files, "hema_mono")
    return adata


def _breast_common(adata: Any, files: dict[str, Path], names: list[str]) -> None:
    adata.varp["prior"] = read_prior(files["prior"], names)
    edges = pd.read_csv(files["validation_network"], dtype=str)
    adata.varp["validation_network"] = read_prior(edges, names, missing="drop")


def _load_breast500(files: dict[str, Path], manifest: Manifest) -> Any:
    names = read_gene_names(files["gene_names"])
    adata = read_trajectories(files["full"], gene_names=names)
    _breast_common(adata, files, names)
    adata.uns["dataset"] = provenance(manifest, files, "breast500")
    return adata


def _load_breast500_split(files: dict[str, Path], manifest: Manifest) -> Any:
    adata, names = _read_splits(files, train="train", test="test")
    _breast_common(adata, files, names)
    adata.uns["dataset"] = provenance(manifest, files, "breast500_split")
    return adata


# --- multi-omics datasets -------------------------------------------------------------------


def _read_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


def _rna_atac(rna: Any, atac: Any, obs: pd.DataFrame, genes: list[str], peaks: list[str]) -> Any:
    """A MuData of ``rna`` and ``atac`` (cells x features) with the cell annotations ``obs``.

    ``obs`` is set on each modality and copied to the MuData's own ``obs``.
    """
    import anndata as ad
    import mudata as md

    mods = {
        "rna": ad.AnnData(X=rna, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(genes))),
        "atac": ad.AnnData(X=atac, obs=obs.copy(), var=pd.DataFrame(index=pd.Index(peaks))),
    }
    with md.set_options(pull_on_update=False):
        mdata = md.MuData(mods)
    for col in obs.columns:
        mdata.obs[col] = obs[col].reindex(mdata.obs_names)
    return mdata


def _load_snareseq(files: dict[str, Path], manifest: Manifest) -> Any:
    import scipy.sparse as sp

    rna = sp.load_npz(files["rna"]).T.tocsr()  # stored features x cells
    atac = sp.load_npz(files["atac"]).T.tocsr()
    meta = pd.read_csv(files["meta"], index_col=0)
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical(meta["Batch"].astype(str)),
            "label": pd.Categorical(meta["cluster (remapped)"].astype(str)),
            "label_fine": pd.Categorical(meta["Ident"].astype(str)),
        },
        index=pd.Index(meta.index.astype(str)),
    )
    genes = _read_lines(files["genes"])
    peaks = _read_lines(files["regions"])
    mdata = _rna_atac(rna, atac, obs, genes, peaks)
    mdata.uns["gene_peak_links"] = sp.load_npz(files["gene_peak"]).tocsr()
    mdata.uns["dataset"] = provenance(manifest, files, "snareseq")
    return mdata


def _load_pbmc_multiome_tiny(files: dict[str, Path], manifest: Manifest) -> Any:
    import anndata as ad
    import mudata as md

    with warnings.catch_warnings():
        # the file uses the 2020 h5mu encoding; it reads fine but warns once per element
        warnings.simplefilter("ignore", ad.OldFormatWarning)
        warnings.filterwarnings("ignore", "The HDF5 file was not created by muon", UserWarning)
        with md.set_options(pull_on_update=False):
            mdata = md.read_h5mu(files["h5mu"])
    mdata.uns["dataset"] = provenance(manifest, files, "pbmc_multiome_tiny")
    return mdata


def _load_pbmc_citeseq(files: dict[str, Path], manifest: Manifest) -> Any:
    import anndata as ad
    import mudata as md
    import scipy.sparse as sp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.OldFormatWarning)  # written by an old anndata
        adata = ad.read_h5ad(files["h5ad"])
    prot = adata.obsm["protein_expression"]
    if isinstance(prot, pd.DataFrame):
        names = [str(c) for c in prot.columns]
        prot = prot.to_numpy()
    else:
        names = [str(n) for n in adata.uns.get("protein_names", range(prot.shape[1]))]
    rna = ad.AnnData(X=sp.csr_matrix(adata.X), obs=adata.obs.copy(), var=adata.var.copy())
    protein = ad.AnnData(
        X=np.asarray(prot, dtype=np.float32),
        obs=adata.obs[[]].copy(),
        var=pd.DataFrame(index=pd.Index(names)),
    )
    with md.set_options(pull_on_update=False):
        mdata = md.MuData({"rna": rna, "prot": protein})
    mdata.uns["dataset"] = provenance(manifest, files, "pbmc_citeseq")
    return mdata


def _spec(name: str, build: Callable[..., Any], manifest: str, keys: list[str], desc: str) -> None:
    m = get_manifest(manifest)
    for k in keys:
        m.file(k)  # fail at import time if a key is misspelled
    register(LoaderSpec(name, build, manifest, tuple(keys), desc, m.license))


_PRIORS = [f"prior_noise_{n}" for n in PRIOR_NOISES]
_spec(
    "sim690",
    _load_sim690,
    "sim690",
    ["test", "gene_names", *_PRIORS],
    "SIM690 test trajectories (AnnData) with true network and 4 noisy priors in varp",
)
_spec(
    "sim350",
    _load_sim350,
    "sim350",
    ["test", "gene_names", *_PRIORS],
    "SIM350 test trajectories (AnnData) with true network and 4 noisy priors in varp",
)
_spec(
    "hema_b",
    _load_hema_b,
    "hema",
    ["b_train", "b_test", "prior", "gene_names"],
    "B-cell lineage, 529 genes: train + test (obs split), prior",
)
_spec(
    "hema_mono",
    _load_hema_mono,
    "hema",
    ["mono_train", "prior", "gene_names"],
    "monocyte lineage, 529 genes: train only, prior",
)
_spec(
    "breast500",
    _load_breast500,
    "breast500",
    ["full", "prior", "gene_names", "validation_network"],
    "breast tumours, 186 points, prior + ChIP",
)
_spec(
    "breast500_split",
    _load_breast500_split,
    "breast500",
    ["train", "test", "prior", "gene_names", "validation_network"],
    "breast tumours: 178 train + 8 middle test points (obs split), prior + ChIP",
)
_spec(
    "snareseq",
    _load_snareseq,
    "snareseq_mop",
    ["rna", "atac", "meta", "genes", "regions", "gene_peak"],
    "SNARE-seq MuData rna + atac, 10,309 cells",
)
_spec(
    "pbmc_multiome_tiny",
    _load_pbmc_multiome_tiny,
    "pbmc_multiome_tiny",
    ["h5mu"],
    "10x Multiome PBMC MuData (rna, atac), 1,000 cells",
)
_spec(
    "pbmc_citeseq",
    _load_pbmc_citeseq,
    "pbmc_citeseq_200",
    ["h5ad"],
    "CITE-seq MuData rna + prot, 200 cells",
)


# --- embedded datasets (shipped in the package; no files to fetch) ---------------------------

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"


def _load_snareseq_demo() -> Any:
    """The embedded SNARE-seq subsample (see ``build_embedded.py``) as a MuData."""
    import gzip

    import scipy.sparse as sp

    with np.load(EMBEDDED_DIR / "snareseq_demo.npz", allow_pickle=False) as z:
        rna = sp.csr_matrix(
            (z["rna_data"], z["rna_indices"], z["rna_indptr"]), shape=tuple(z["shape_rna"])
        )
        atac = sp.csr_matrix(
            (z["atac_data"].astype(np.int32), z["atac_indices"], z["atac_indptr"]),
            shape=tuple(z["shape_atac"]),
        )
        genes = [str(g) for g in z["genes"]]
        peaks = [str(p) for p in z["peaks"]]
    with gzip.open(EMBEDDED_DIR / "snareseq_demo_obs.csv.gz", "rt") as fh:
        meta = pd.read_csv(fh, dtype=str, keep_default_na=False)
    obs = pd.DataFrame(
        {c: pd.Categorical(meta[c]) for c in ("batch", "label", "label_fine")},
        index=pd.Index(meta["cell"]),
    )
    mdata = _rna_atac(rna, atac, obs, genes, peaks)
    m = get_manifest("snareseq_mop")
    mdata.uns["dataset"] = {
        "name": "snareseq_demo",
        "loader": "snareseq_demo",
        "embedded": True,
        "title": "Stratified SNARE-seq subsample (embedded): ~2,000 cells, 1,677 genes, "
        "4,000 most frequently accessible peaks",
        "license": m.license,
        "citation": m.citation,
        "source": m.source,
        "built_by": "biostruct/datasets/build_embedded.py",
    }
    return mdata


def _load_sim690_demo() -> Any:
    """20 noise-free SIM690 trajectories simulated from the embedded system (seed 0)."""
    from biostruct.datasets.simulator import simulate_sim690

    adata = simulate_sim690(20, seed=0)
    m = get_manifest("sim690")
    adata.uns["dataset"] = {
        "name": "sim690_demo",
        "loader": "sim690_demo",
        "embedded": True,
        "title": "SIM690 simulated from the embedded ODE system: 20 trajectories, t = 0,2,3,7,9",
        "license": m.license,
        "citation": m.citation,
        "source": m.source,
        "built_by": "biostruct.datasets.simulate_sim690(20, seed=0)",
    }
    return adata


register(
    LoaderSpec(
        "snareseq_demo",
        _load_snareseq_demo,
        None,
        description="embedded: SNARE-seq MuData rna + atac, 2,000 cells, 4,000 peaks",
        license="MIT (PeterZZQ/scMoMaT); data from GEO GSE126074",
    )
)
register(
    LoaderSpec(
        "sim690_demo",
        _load_sim690_demo,
        None,
        description="embedded: 20 simulated SIM690 trajectories with true network and priors",
        license="MIT (QuackenbushLab/DASH)",
    )
)
