"""Benchmark: DAG-VAE (ATAC -> RNA, RNA only, ATAC only) vs scvi-tools MULTIVI on SNARE-seq.

Data: SNARE-seq adult mouse cortex (Chen et al. 2019; scMoMaT MOp batch 1), 10,309 cells,
1,677 genes, 25,734 peaks (all-zero peaks dropped), labels = ``cluster (remapped)`` (15 classes).

Rows: model, component, ARI/NMI of (a) the model's own mixture clusters, (b) Leiden on the latent
at the best of a few resolutions (by ARI), kNN label purity (k = 15), train_seconds,
seconds_per_epoch, peak_rss_mb, device. Each model runs in its own process, so peak RSS is its own.
Every model trains for the same number of epochs (DAG-VAE: per component; early stopping off).

Usage::

    python benchmarks/multiomics_snareseq.py --quick          # < 5 min on 2 CPU cores
    python benchmarks/multiomics_snareseq.py --epochs 100     # full run (GPU recommended)

``--quick`` uses a 3,000-cell random subsample, the 5,000 most open peaks and 10 epochs, so that it
checks the whole pipeline (written to ``multiomics_snareseq_quick.{json,md}``); the full run uses
every cell and the peaks open in at least 0.25 % of the cells (``--min-peak-frac``; the same
matrix for every model). Writes ``reports/benchmarks/multiomics_snareseq.{json,md}`` atomically,
after each model.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
# developer checkouts keep the fixture data next to the repository
if "BIOSTRUCT_DATA_DIR" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["BIOSTRUCT_DATA_DIR"] = str(REPO.parent / "shared" / "data")
RESOLUTIONS = (0.1, 0.2, 0.5, 1.0)
#: MULTIVI runs: scvi-tools' defaults (lr 1e-4, KL warm-up over 50 epochs), and the same model
#: with settings for a short budget (lr 1e-3, KL warm-up over the first 30 % of the epochs, as
#: the DAG-VAE's), so that a fixed small number of epochs does not handicap it.
MULTIVI_VARIANTS = {
    "multivi": lambda epochs: {},
    "multivi_short": lambda epochs: {"lr": 1e-3, "n_epochs_kl_warmup": max(1, round(0.3 * epochs))},
}


def load_data(quick: bool, seed: int = 0, min_peak_frac: float = 0.0):
    """SNARE-seq as MuData: every cell (quick: 3,000) and the peaks open in at least
    ``min_peak_frac`` of the cells (quick: the 5,000 most open peaks)."""
    import numpy as np

    import biostruct as bs
    from biostruct.multiomics import filter_empty

    md = bs.datasets.load("snareseq")
    if quick:
        rng = np.random.default_rng(seed)
        cells = np.sort(rng.choice(md.n_obs, size=3000, replace=False))
        md = md[md.obs_names[cells]].copy()
    atac = md.mod["atac"]
    freq = np.asarray((atac.X > 0).sum(0)).ravel()
    if quick:
        keep = np.sort(np.argsort(-freq, kind="stable")[:5000])
    else:
        keep = np.flatnonzero(freq >= min_peak_frac * md.n_obs)
    if len(keep) < atac.n_vars:
        md.mod["atac"] = atac[:, keep].copy()
        md.update()
    md = filter_empty(md)
    return md


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _metrics(z, labels, own=None, seed=0) -> dict:
    import numpy as np
    import scanpy as sc
    from sklearn.metrics import adjusted_rand_score as ari
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from biostruct.multiomics import knn_purity
    from biostruct.multiomics.analysis import latent_neighbors

    out = {"knn_purity": knn_purity(z, labels, k=15)}
    if own is not None:
        out.update(ari_own=ari(labels, own), nmi_own=nmi(labels, own), n_own=len(np.unique(own)))
    tmp = latent_neighbors(z, n_neighbors=15, seed=seed)
    best = None
    for r in RESOLUTIONS:
        sc.tl.leiden(
            tmp,
            resolution=r,
            key_added="l",
            flavor="igraph",
            n_iterations=2,
            directed=False,
            random_state=seed,
        )
        lab = tmp.obs["l"].to_numpy()
        row = {
            "ari_leiden": ari(labels, lab),
            "nmi_leiden": nmi(labels, lab),
            "leiden_resolution": r,
            "n_leiden": len(np.unique(lab)),
        }
        if best is None or row["ari_leiden"] > best["ari_leiden"]:
            best = row
    out.update(best)
    return out


def run_dagvae(task: dict) -> list[dict]:
    import numpy as np
    import torch

    from biostruct.multiomics import DAGVAE
    from biostruct.multiomics import analysis as an

    torch.set_num_threads(task["threads"])
    md = load_data(task["quick"], min_peak_frac=task["min_peak_frac"])
    labels = md.obs["label"].astype(str).to_numpy()
    graphs = {  # (graph, modalities); None = the default ATAC -> RNA
        "dagvae_atac_to_rna": (None, ("rna", "atac")),
        "dagvae_rna_only": ({"components": [{"name": "rna", "modalities": ["rna"]}]}, ("rna",)),
        "dagvae_atac_only": ({"components": [{"name": "atac", "modalities": ["atac"]}]}, ("atac",)),
    }
    g, mods = graphs[task["model"]]
    data = {m: md.mod[m] for m in mods}
    t0 = time.perf_counter()
    model = DAGVAE(data, g, n_latent=10, device=task["device"], seed=task["seed"])
    model.train(max_epochs=task["epochs"], early_stopping=False)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0
    n_epochs = sum(s["epochs"] for s in model.train_summary)
    rows = []
    for c in model.graph.order:
        lat = an.latents(model.module, model.data, c, model.device)
        probs = an.mixture_clusters(model.module, c, lat["z"])
        rows.append({"component": c, **_metrics(lat["z"], labels, probs.argmax(1), task["seed"])})
        if model.graph[c].parents:
            li, _ = an.integrated_clusters(model.module, c, lat["z_hat"])
            rows.append(
                {
                    "component": f"{c} (integrated z_hat)",
                    **_metrics(lat["z_hat"], labels, li, task["seed"]),
                }
            )
    extra = {}
    if task["model"] == "dagvae_atac_to_rna":
        from biostruct.multiomics.pyro_model import svi_step_seconds

        idx = np.arange(min(128, model.data.n_cells))
        b = model.data.minibatch(idx, model.device)
        extra["pyro_overhead_rna_step"] = svi_step_seconds(model.module, "rna", b, b["_batch"], 10)
    for r in rows:
        r.update(
            model=task["model"],
            train_seconds=train_s,
            epochs=n_epochs,
            seconds_per_epoch=train_s / n_epochs,
            # one pass over every modality of the model (MULTIVI's epoch)
            seconds_per_data_epoch=train_s / task["epochs"],
            peak_rss_mb=_peak_rss_mb(),
            device=model.device.type,
            **({"extra": extra} if extra else {}),
        )
    return rows


def run_multivi(task: dict) -> list[dict]:
    import torch

    torch.set_num_threads(task["threads"])
    try:
        import scvi
    except ImportError as err:
        return [{"model": task["model"], "skipped": f"scvi-tools not importable: {err}"}]
    md = load_data(task["quick"], min_peak_frac=task["min_peak_frac"])
    labels = md.obs["label"].astype(str).to_numpy()
    scvi.settings.seed = task["seed"]
    scvi.settings.dl_num_workers = 0
    scvi.model.MULTIVI.setup_mudata(md, modalities={"rna_layer": "rna", "atac_layer": "atac"})
    n_genes, n_regions = md.mod["rna"].n_vars, md.mod["atac"].n_vars
    t0 = time.perf_counter()
    model = scvi.model.MULTIVI(md, n_genes=n_genes, n_regions=n_regions)
    accel = "gpu" if (task["device"] in ("auto", "cuda") and torch.cuda.is_available()) else "cpu"
    settings = MULTIVI_VARIANTS[task["model"]](task["epochs"])
    model.train(
        max_epochs=task["epochs"], early_stopping=False, accelerator=accel, devices=1, **settings
    )
    train_s = time.perf_counter() - t0
    rows = []
    for which in ("joint", "expression", "accessibility"):
        z = model.get_latent_representation(modality=which)
        rows.append(
            {
                "model": task["model"],
                "train_settings": settings,
                "component": which,
                **_metrics(z, labels, None, task["seed"]),
                "train_seconds": train_s,
                "epochs": task["epochs"],
                "seconds_per_epoch": train_s / task["epochs"],
                "seconds_per_data_epoch": train_s / task["epochs"],
                "peak_rss_mb": _peak_rss_mb(),
                "device": "cuda" if accel == "gpu" else "cpu",
                "n_latent": z.shape[1],
            }
        )
    return rows


def _child(task: dict, q) -> None:
    try:
        fn = run_multivi if task["model"] in MULTIVI_VARIANTS else run_dagvae
        q.put(fn(task))
    except Exception as err:  # a failing model must not sink the others
        import traceback

        q.put(
            [
                {
                    "model": task["model"],
                    "skipped": f"error: {err!r}",
                    "trace": traceback.format_exc(),
                }
            ]
        )


def run_isolated(task: dict) -> list[dict]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(task, q))
    p.start()
    rows = q.get()
    p.join()
    return rows


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def to_markdown(result: dict) -> str:
    cols = [
        ("model", "model"),
        ("component", "component"),
        ("ari_own", "ARI own"),
        ("nmi_own", "NMI own"),
        ("n_own", "#own"),
        ("ari_leiden", "ARI Leiden"),
        ("nmi_leiden", "NMI Leiden"),
        ("leiden_resolution", "res"),
        ("knn_purity", "kNN purity"),
        ("train_seconds", "train s"),
        ("seconds_per_epoch", "s/epoch"),
        ("seconds_per_data_epoch", "s/data epoch"),
        ("peak_rss_mb", "peak RSS MB"),
        ("device", "device"),
    ]
    m = result["meta"]
    lines = [
        "# DAG-VAE vs MULTIVI on SNARE-seq",
        "",
        f"Command: `{m['command']}`  ",
        f"Data: {m['n_cells']} cells, {m['n_genes']} genes, {m['n_peaks']} peaks"
        + (
            f" (open in >= {100 * m['min_peak_frac']:g} % of cells)"
            if m.get("min_peak_frac")
            else ""
        )
        + "; labels "
        f"`cluster (remapped)` ({m['n_labels']} classes). Epochs: {m['epochs']} "
        f"(DAG-VAE: per component). Host: {m['host']}; torch threads {m['threads']}.",
        "",
        "| " + " | ".join(c[1] for c in cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['model']} | skipped: {r['skipped']} |" + " |" * (len(cols) - 2))
            continue
        cells = []
        for k, _ in cols:
            v = r.get(k, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    po = m.get("pyro_overhead_rna_step")
    if po:
        lines += [
            "",
            f"Pyro SVI step (Trace_ELBO, same networks, 128 cells, RNA component): "
            f"{po['pyro_svi_step_s'] * 1000:.1f} ms vs plain-torch step "
            f"{po['plain_torch_step_s'] * 1000:.1f} ms (x{po['ratio']:.2f}).",
        ]
    lines += _targets(result["rows"])
    lines += [
        "",
        "ATAC only: the `atac` row of `dagvae_atac_to_rna` is an ATAC-only model (the root "
        "component is trained first, alone, with the same seed); `dagvae_atac_only` is run "
        "separately only when listed in `--models`.",
        "",
        "s/epoch: per component-epoch (DAG-VAE trains components one after another); "
        "s/data epoch: train seconds / epochs, one pass over every modality (MULTIVI's epoch).",
        "ARI/NMI 'own' = the model's mixture-prior clusters (MULTIVI has none); Leiden at "
        f"the best of resolutions {list(RESOLUTIONS)} by ARI; kNN purity k = 15.",
        "",
    ]
    return "\n".join(lines)


def _targets(rows: list[dict]) -> list[str]:
    """Target check: integrated DAG-VAE component vs the best MULTIVI run (ARI/NMI, s/epoch)."""
    ours = [
        r
        for r in rows
        if r.get("model") == "dagvae_atac_to_rna" and "integrated" in str(r.get("component"))
    ]
    mv = [
        r
        for r in rows
        if r.get("model") in MULTIVI_VARIANTS
        and r.get("component") == "joint"
        and "ari_leiden" in r
    ]
    if not ours or not mv:
        return []
    o = ours[0]
    m = max(mv, key=lambda r: r["ari_leiden"])
    ari_o = max(o["ari_leiden"], o["ari_own"])
    nmi_o = max(o["nmi_leiden"], o["nmi_own"])
    nmi_m = max(r["nmi_leiden"] for r in mv)
    so, sm = o["seconds_per_data_epoch"], min(r["seconds_per_data_epoch"] for r in mv)
    return [
        "",
        "Targets (integrated z_hat of ATAC -> RNA, best of own clusters and Leiden, vs the best "
        f"MULTIVI run's joint latent with Leiden, here `{m['model']}`):",
        f"- ARI {ari_o:.3f} vs {m['ari_leiden']:.3f}: "
        + ("met" if ari_o >= m["ari_leiden"] else "NOT met"),
        f"- NMI {nmi_o:.3f} vs {nmi_m:.3f}: " + ("met" if nmi_o >= nmi_m else "NOT met"),
        f"- seconds per data epoch {so:.2f} vs {sm:.2f} (fastest MULTIVI run): "
        + ("met" if so <= sm else "NOT met"),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3,000 cells, 5,000 peaks, 10 epochs")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 100; quick 10)")
    ap.add_argument(
        "--min-peak-frac",
        type=float,
        default=0.0025,
        help="full run: keep peaks open in at least this fraction of cells (0.0025: 9,808 of "
        "25,734 peaks, 86 %% of the reads; 0 keeps all)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per model")
    ap.add_argument(
        "--models",
        default="dagvae_atac_to_rna,dagvae_rna_only,multivi,multivi_short",
        help="dagvae_atac_only is left out by default: the root (ATAC) component of "
        "dagvae_atac_to_rna is trained first, alone, with the same seed, so it is that model",
    )
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep rows of other models from an earlier run with the same data and epochs",
    )
    ap.add_argument("--out", default=str(REPO / "reports" / "benchmarks"))
    args = ap.parse_args(argv)
    epochs = args.epochs or (10 if args.quick else 100)
    md = load_data(args.quick, min_peak_frac=args.min_peak_frac)
    meta = {
        "command": meta_command(argv),
        "quick": args.quick,
        "epochs": epochs,
        "n_cells": int(md.n_obs),
        "n_genes": int(md.mod["rna"].n_vars),
        "n_peaks": int(md.mod["atac"].n_vars),
        "min_peak_frac": 0.0 if args.quick else args.min_peak_frac,
        "n_labels": int(md.obs["label"].nunique()),
        "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "threads": args.threads,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    del md
    out = Path(args.out)
    name = "multiomics_snareseq_quick" if args.quick else "multiomics_snareseq"
    models = args.models.split(",")
    rows: list[dict] = []
    if args.merge and (out / f"{name}.json").exists():
        # keep the other models' rows of an earlier run with the same data and epochs
        old = json.loads((out / f"{name}.json").read_text())
        same = all(old["meta"].get(k) == meta[k] for k in ("epochs", "n_cells", "n_peaks"))
        if same:
            rows = [r for r in old["rows"] if r.get("model") not in models]
            meta = {**old["meta"], **{k: v for k, v in meta.items() if k != "command"}}
            meta["command"] = old["meta"]["command"] + " ; " + meta_command(argv)
    t0 = time.perf_counter()
    for model in models:
        task = {
            "model": model,
            "quick": args.quick,
            "min_peak_frac": args.min_peak_frac,
            "epochs": epochs,
            "device": args.device,
            "seed": args.seed,
            "threads": args.threads,
        }
        print(f"[{time.perf_counter() - t0:6.0f}s] {model} ...", flush=True)
        res = run_isolated(task)
        for r in res:
            extra = r.pop("extra", None)
            if extra:
                meta.update(extra)
        rows.extend(res)
        _write(out, name, {"meta": meta, "rows": rows})
        for r in res:
            if "skipped" in r:
                print(f"  skipped: {r['skipped']}\n{r.get('trace', '')}", flush=True)
            else:
                print(
                    f"  {r['component']:28s} ARI own {r.get('ari_own', float('nan')):.3f} "
                    f"Leiden {r['ari_leiden']:.3f} NMI {r['nmi_leiden']:.3f} "
                    f"purity {r['knn_purity']:.3f} {r['seconds_per_epoch']:.2f} s/epoch",
                    flush=True,
                )
    meta["total_seconds"] = meta.get("total_seconds", 0.0) + time.perf_counter() - t0
    _write(out, name, {"meta": meta, "rows": rows})
    print(f"wrote {out / name}.{{json,md}} in {time.perf_counter() - t0:.0f} s")
    return 0


def meta_command(argv: list[str] | None) -> str:
    return "python benchmarks/multiomics_snareseq.py " + " ".join(argv or sys.argv[1:])


def _write(out: Path, name: str, result: dict) -> None:
    _atomic_write(out / f"{name}.json", json.dumps(result, indent=1, default=float))
    _atomic_write(out / f"{name}.md", to_markdown(result))


if __name__ == "__main__":
    raise SystemExit(main())
