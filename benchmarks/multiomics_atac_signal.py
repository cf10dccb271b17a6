"""Benchmark: does the ATAC -> RNA DAG-VAE use ATAC when the ATAC carries cell-type signal?

The DEV SNARE-seq ATAC carries almost no label signal at small n (ATAC LSI ARI 0.006 on 550
cells), so ``multiomics_dev.py`` cannot tell whether the model would use a better ATAC. This
benchmark keeps the real SNARE-seq RNA and labels of a random subsample and replaces the ATAC by
one simulated from the coarse labels, under two generative models that the model does not share
one-to-one:

- ``cloglog``: fragments Poisson over peaks, a peak open if it has one (p = 1 - exp(-l w));
- ``logistic``: logit p = per-cell openness + peak effect + type effect + per-entry noise.

Each type opens its own random 10 % of 3,000 peaks more or less (effect N(0, 1.2)); the depth is
lognormal (median 300 fragments, sd 0.6 in log) and independent of the type. Rows, side by side
on the same cells with the same metric code as ``multiomics_dev.py`` (Leiden best-by-ARI, mean
over its Leiden seeds): scanpy RNA PCA, ATAC LSI, their concatenation, and the DAG-VAE (ATAC-only
latent, integrated z_hat with ``decode_ancestors`` "none"/"all", RNA-only), 3 model seeds.

Usage::

    python benchmarks/multiomics_atac_signal.py            # about 6 min on 2 CPUs

Writes ``reports/benchmarks/multiomics_atac_signal.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
if "BIOSTRUCT_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["BIOSTRUCT_DATA_DIR"] = str(REPO.parent / "shared" / "data")
sys.path.insert(0, str(REPO / "benchmarks"))

import multiomics_dev as mdv  # noqa: E402

SIMULATIONS = ("cloglog", "logistic")
N_PEAKS = 3000
SEEDS = (0, 1, 2)

#: Measured on these simulations before the rows below (subsample 0, seeds 0-2, ARI).
TRIED = [
    "The MultiVI-style ATAC likelihood used before (p = sigmoid(W h) x sigmoid(cell factor) x "
    "sigmoid(region factor), the cell factor learned from the binarised profile): ATAC latent "
    "0.008 (cloglog) / 0.007 (logistic), its dimensions correlated 0.9 with log depth; "
    "integrated z_hat 0.408 / 0.419, RNA-only 0.417 (ATAC LSI 0.631 / 0.538).",
    "The depth-offset likelihood with the binarised peaks fed unscaled: ATAC latent 0.257 / "
    "0.176; the old likelihood with standardised peaks 0.072 / 0.042; both changes together "
    "0.750 / 0.255 (kept). A logistic link with the same depth offset (logit p = W h + log l): "
    "0.667 / 0.219, below the cloglog link even on the logistic simulation.",
    "Not kept (ATAC latent, cloglog / logistic): encoder input log1p(x / l x 1e4) 0.292 / 0.134 "
    "unscaled, 0.751 / 0.256 scaled (no gain over scaling alone); n_latent 5 0.667 / 0.288; "
    "n_clusters 1 0.746 / 0.292; patience 30 no change; max_epochs 300 no change (early "
    "stopping ends the component near epoch 40); weight_decay 1e-2 0.779 / 0.279, dropout 0.2 "
    "0.704 / 0.236, n_hidden 32 0.539 / 0.101, KL annealing over 5 epochs 0.454 / 0.026.",
    "The ATAC component's held-out ELBO is below a latent-free model (each peak's pooled rate "
    "times the depth) by 11-20 nats per cell on the logistic simulation and on the DEV ATAC, "
    "and 1 nat above it on the cloglog one, so it cannot tell an informative ATAC from noise; "
    "kNN overlap of the ATAC latent with RNA PCA (1.2-1.3x chance on DEV, 1.5x on the logistic "
    "simulation) cannot either.",
]


def simulate(md, kind: str, seed: int):
    """``md`` with its ATAC replaced by one simulated from ``md.obs["label"]``."""
    import anndata as ad
    import mudata
    import numpy as np
    import scipy.sparse as sp

    from biostruct.multiomics import filter_empty

    labels = md.obs["label"].to_numpy()
    rng = np.random.default_rng(100 + seed)
    types, code = np.unique(labels, return_inverse=True)
    base = rng.normal(-1.0, 1.0, N_PEAKS)
    specific = rng.random((len(types), N_PEAKS)) < 0.1
    shift = np.where(specific, rng.normal(0.0, 1.2, (len(types), N_PEAKS)), 0.0)
    depth = np.exp(rng.normal(np.log(300.0), 0.6, md.n_obs))
    logit = base[None, :] + shift[code]
    if kind == "cloglog":
        w = np.exp(logit)
        w /= w.sum(1, keepdims=True)
        p = -np.expm1(-depth[:, None] * w)
    elif kind == "logistic":
        a = np.log(depth / 300.0)[:, None] - 3.2 + rng.normal(0.0, 0.5, (md.n_obs, N_PEAKS))
        p = 1.0 / (1.0 + np.exp(-(a + logit - base.mean())))
    else:
        raise SystemExit(f"unknown simulation {kind!r}; use one of {SIMULATIONS}")
    x = (rng.random(p.shape) < p).astype(np.float32)
    atac = ad.AnnData(sp.csr_matrix(x), obs=md.mod["rna"].obs.copy())
    atac.var_names = [f"chr1_{i * 1000}_{i * 1000 + 500}" for i in range(N_PEAKS)]
    out = filter_empty(mudata.MuData({"rna": md.mod["rna"].copy(), "atac": atac}))
    out.obs["label"] = md.obs["label"].reindex(out.obs_names).to_numpy()
    return out


def baselines(md) -> list[dict]:
    import numpy as np

    labels = md.obs["label"].to_numpy()
    rna = mdv._rna_pca(md.mod["rna"])
    lsi = mdv._atac_lsi(md.mod["atac"])
    cat = np.concatenate([mdv._unit(rna), mdv._unit(lsi)], 1)
    rows = []
    for method, z in (("pca_rna", rna), ("lsi_atac", lsi), ("concat_rna_atac", cat)):
        rows.append({"method": method, "latent": method, "seed": None, **mdv.score(z, labels)})
    return rows


def dagvae_rows(md, seed: int) -> list[dict]:
    import torch

    from biostruct.multiomics import DAGVAE

    torch.set_num_threads(1)
    labels = md.obs["label"].to_numpy()
    rows = []
    runs = (
        ("dagvae", dict(md.mod), {"decode_ancestors": "none"}),
        ("dagvae_decode_all", dict(md.mod), {"decode_ancestors": "all"}),
        ("dagvae_rna_only", {"rna": md.mod["rna"]}, {}),
    )
    for method, mods, init in runs:
        t0 = time.perf_counter()
        model = DAGVAE(mods, seed=seed, **init)
        model.train(progress=False)
        secs = time.perf_counter() - t0
        latents = [("z_hat_rna", "rna", "z_hat")] if "atac" in mods else [("z_rna", "rna", "z")]
        if method == "dagvae":
            latents.append(("z_atac", "atac", "z"))
        for name, comp, kind in latents:
            z = model.get_latent_representation(comp, kind)
            rows.append(
                {
                    "method": method,
                    "latent": name,
                    "seed": seed,
                    "train_seconds": secs,
                    **mdv.score(z, labels, seed),
                }
            )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    import numpy as np

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["simulation"], r["method"], r["latent"]), []).append(r)
    out = []
    for (sim, method, latent), rs in groups.items():
        out.append(
            {
                "simulation": sim,
                "method": method,
                "latent": latent,
                "n": len(rs),
                **{k: float(np.mean([r[k] for r in rs])) for k in ("ari", "nmi", "knn_purity")},
                "ari_sd": float(np.std([r["ari"] for r in rs])),
            }
        )
    return out


def to_markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# ATAC with signal: does the DAG-VAE use it?",
        "",
        f"Command: `{meta['command']}`  ",
        f"Data: real SNARE-seq RNA and its {meta['n_labels']} coarse labels, {meta['n_cells']} "
        f"random cells (subsample {meta['subsample']}); ATAC simulated from the labels "
        f"({N_PEAKS} peaks, see the script's docstring). Model seeds {list(SEEDS)}. Host: "
        f"{meta['host']}; {meta['seconds']:.0f} s.",
        "",
        "| simulation | method | latent | ARI (sd) | NMI | kNN purity |",
        "|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        sd = f" ({s['ari_sd']:.3f})" if s["n"] > 1 else ""
        lines.append(
            f"| {s['simulation']} | {s['method']} | {s['latent']} | {s['ari']:.3f}{sd} | "
            f"{s['nmi']:.3f} | {s['knn_purity']:.3f} |"
        )
    lines += ["", "Tried before this run:", "", *[f"- {t}" for t in TRIED], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=550)
    ap.add_argument("--subsample", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "reports" / "benchmarks"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    md = mdv.load("snareseq_mop", args.cells, args.subsample)
    rows = []
    for kind in SIMULATIONS:
        sim = simulate(md, kind, args.subsample)
        rows += [{"simulation": kind, **r} for r in baselines(sim)]
        for seed in SEEDS:
            rows += [{"simulation": kind, **r} for r in dagvae_rows(sim, seed)]
            print(f"{kind} seed {seed} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    result = {
        "meta": {
            "command": "python benchmarks/multiomics_atac_signal.py "
            + " ".join(argv or sys.argv[1:]),
            "n_cells": int(md.n_obs),
            "n_labels": int(md.obs["label"].nunique()),
            "subsample": args.subsample,
            "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
            "seconds": time.perf_counter() - t0,
        },
        "rows": rows,
    }
    result["summary"] = summarise(rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("multiomics_atac_signal.json", json.dumps(result, indent=1, default=float)),
        ("multiomics_atac_signal.md", to_markdown(result)),
    ):
        tmp = out / (name + ".tmp")
        tmp.write_text(text)
        tmp.replace(out / name)
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
