"""Build the embedded default datasets shipped in ``biostruct/datasets/embedded/``.

Run from the repository root with the shared data available::

    BIOSTRUCT_DATA_DIR=../shared/data python -m biostruct.datasets.build_embedded

It reads the manifest-verified files (so the inputs are exactly the published bytes) and writes,
deterministically (fixed seed, fixed zip/gzip timestamps), so a rerun reproduces the same bytes:

``sim690_ode_system.csv.gz``
    The published SIM690 ODE system (columns ``node``, ``eqn``), byte-for-byte, gzipped.
``sim690_network.npz``
    ``gene_names`` (the published gene order, inputs with suffix ``_input``); the true edges
    (``edge_from``, ``edge_to`` gene indices, ``edge_sign``, ``edge_ec50``, ``edge_n``); and the
    four DASH priors as sparse triplets ``prior_<noise>_{row,col,val}``.
``sim350_edge_removed_variant_ode_system.csv.gz``
    The phoenix SIM350 ODE file. It is an *edge-removed variant*, not the generator of the SIM350
    test set (REB1->SIN3, GLN3->FUR4, UME6->GAL1 are missing).
``sim350_network.npz``
    SIM350 ``gene_names`` (the order matching the priors) and its four priors as triplets.
``snareseq_demo.npz`` and ``snareseq_demo_obs.csv.gz``
    A stratified SNARE-seq subsample: ``N_CELLS`` cells (proportional to the 15 coarse labels,
    at least ``MIN_PER_LABEL`` per label, seed ``SEED``), all 1,677 genes, and the ``N_PEAKS``
    most frequently accessible peaks over all 10,309 cells (genomic order kept); CSR count
    matrices (cells x features), feature names, and per-cell batch and labels.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from biostruct.datasets.manifests import fetch_files, get_manifest
from biostruct.datasets.priors import read_prior
from biostruct.datasets.trajectories import read_gene_names

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
NOISES = ("0.0", "0.025", "0.05", "0.1")
SEED = 0
N_CELLS = 2000
MIN_PER_LABEL = 25
N_PEAKS = 4000


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gzip_bytes(data: bytes) -> bytes:
    """Gzip with a zero timestamp and no file name, so equal input gives equal output."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` with fixed member timestamps (``np.savez`` stamps the clock)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(arrays):
            arr = np.asarray(arrays[name])
            if arr.dtype == object:
                raise TypeError(f"{name}: object arrays are not stored (no pickles)")
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue(), compresslevel=9)
    return buf.getvalue()


def _triplets(prefix: str, m: np.ndarray) -> dict[str, np.ndarray]:
    r, c = np.nonzero(m)
    return {
        f"{prefix}_row": r.astype(np.int16),
        f"{prefix}_col": c.astype(np.int16),
        f"{prefix}_val": m[r, c].astype(np.float32),
    }


def build_sim(name: str, data_dir: str | Path | None, out_dir: Path) -> list[Path]:
    """Write the embedded files of ``sim690`` or ``sim350``; returns the paths written."""
    m = get_manifest(name)
    ode_key = "ode_system" if name == "sim690" else "ode_system_edge_removed_variant"
    keys = ["gene_names", "edge_properties", ode_key] + [f"prior_noise_{n}" for n in NOISES]
    files = fetch_files(m, keys, data_dir=data_dir, download=data_dir is None)
    names = read_gene_names(files["gene_names"])
    arrays: dict[str, np.ndarray] = {"gene_names": np.asarray(names, dtype=str)}
    for noise in NOISES:
        arrays.update(_triplets(f"prior_{noise}", read_prior(files[f"prior_noise_{noise}"], names)))
    if name == "sim690":
        edges = pd.read_csv(files["edge_properties"])
        plain = pd.Index([n.removesuffix("_input") for n in names])
        arrays["edge_from"] = plain.get_indexer(edges["from"]).astype(np.int16)
        arrays["edge_to"] = plain.get_indexer(edges["to"]).astype(np.int16)
        if (arrays["edge_from"] < 0).any() or (arrays["edge_to"] < 0).any():
            raise ValueError("edge_properties names a gene that is not in gene_names")
        act = edges["activation"].astype(str).str.upper() == "TRUE"
        arrays["edge_sign"] = np.where(act, 1, -1).astype(np.int8)
        arrays["edge_ec50"] = edges["EC50"].to_numpy(np.float64)
        arrays["edge_n"] = edges["n"].to_numpy(np.float64)
        ode_name = "sim690_ode_system.csv.gz"
    else:
        ode_name = "sim350_edge_removed_variant_ode_system.csv.gz"
    out = [out_dir / ode_name, out_dir / f"{name}_network.npz"]
    _atomic_write(out[0], gzip_bytes(files[ode_key].read_bytes()))
    _atomic_write(out[1], npz_bytes(arrays))
    return out


def stratified_cells(labels: np.ndarray, n_cells: int, min_per_label: int, seed: int) -> np.ndarray:
    """Sorted indices of a label-stratified sample.

    Labels whose proportional share is below ``min_per_label`` get ``min_per_label`` cells (or
    all of theirs); the other labels share the remaining budget in proportion to their size
    (largest-remainder rounding). Cells are drawn without replacement within each label.
    """
    cats, counts = np.unique(labels, return_counts=True)
    floor = np.minimum(counts, min_per_label)
    fixed = np.zeros(cats.size, dtype=bool)
    while True:
        budget = n_cells - floor[fixed].sum()
        share = budget * counts / counts[~fixed].sum()
        newly = ~fixed & (share < floor)
        if not newly.any():
            break
        fixed |= newly
    take = np.where(fixed, floor, np.floor(share)).astype(int)
    rest = n_cells - take.sum()
    frac = np.where(fixed, -1.0, share - np.floor(share))
    take[np.argsort(-frac, kind="stable")[:rest]] += 1
    take = np.minimum(take, counts)
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == cat), size=int(k), replace=False)
        for cat, k in zip(cats, take)
    ]
    return np.sort(np.concatenate(chosen))


def build_snareseq_demo(data_dir: str | Path | None, out_dir: Path) -> list[Path]:
    """Write the embedded SNARE-seq subsample; returns the paths written."""
    import scipy.sparse as sp

    m = get_manifest("snareseq_mop")
    files = fetch_files(
        m, ["rna", "atac", "meta", "genes", "regions"], data_dir=data_dir, download=data_dir is None
    )
    rna = sp.load_npz(files["rna"]).T.tocsr()
    atac = sp.load_npz(files["atac"]).T.tocsr()
    meta = pd.read_csv(files["meta"], index_col=0)
    genes = [g.strip() for g in files["genes"].read_text().splitlines() if g.strip()]
    peaks = [p.strip() for p in files["regions"].read_text().splitlines() if p.strip()]

    cells = stratified_cells(
        meta["cluster (remapped)"].astype(str).to_numpy(), N_CELLS, MIN_PER_LABEL, SEED
    )
    freq = np.asarray((atac > 0).sum(axis=0)).ravel()
    top = np.sort(np.argsort(-freq, kind="stable")[:N_PEAKS])
    r = rna[cells].tocsr()
    a = atac[cells][:, top].tocsr()
    r.sort_indices()
    a.sort_indices()
    arrays = {
        "rna_data": r.data.astype(np.int32),
        "rna_indices": r.indices.astype(np.int32),
        "rna_indptr": r.indptr.astype(np.int64),
        "atac_data": a.data.astype(np.int8),
        "atac_indices": a.indices.astype(np.int32),
        "atac_indptr": a.indptr.astype(np.int64),
        "shape_rna": np.asarray(r.shape, dtype=np.int64),
        "shape_atac": np.asarray(a.shape, dtype=np.int64),
        "genes": np.asarray(genes, dtype=str),
        "peaks": np.asarray([peaks[i] for i in top], dtype=str),
    }
    obs = pd.DataFrame(
        {
            "cell": meta.index[cells].astype(str),
            "batch": meta["Batch"].iloc[cells].astype(str).to_numpy(),
            "label": meta["cluster (remapped)"].iloc[cells].astype(str).to_numpy(),
            "label_fine": meta["Ident"].iloc[cells].astype(str).to_numpy(),
        }
    )
    out = [out_dir / "snareseq_demo.npz", out_dir / "snareseq_demo_obs.csv.gz"]
    _atomic_write(out[0], npz_bytes(arrays))
    _atomic_write(out[1], gzip_bytes(obs.to_csv(index=False, lineterminator="\n").encode()))
    return out


def build_all(data_dir: str | Path | None = None, out_dir: str | Path = EMBEDDED_DIR) -> list[Path]:
    """Build every embedded file into ``out_dir``; returns the paths written."""
    out_dir = Path(out_dir)
    paths = build_sim("sim690", data_dir, out_dir)
    paths += build_sim("sim350", data_dir, out_dir)
    paths += build_snareseq_demo(data_dir, out_dir)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("BIOSTRUCT_DATA_DIR"),
        help="local copy of the data (default BIOSTRUCT_DATA_DIR; without it, files are "
        "downloaded from the manifests' URLs)",
    )
    parser.add_argument("--out", default=str(EMBEDDED_DIR), help="output folder")
    args = parser.parse_args(argv)
    for p in build_all(args.data_dir, args.out):
        print(f"{p}  {p.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
