"""GRN benchmark on single cells with pseudotime (BEELINE format), biostruct next to baselines.

Every dataset folder under ``--data`` (default ``$BIOSTRUCT_DATA_DIR/grn/dev_boolode``) holds
``ExpressionData.csv``, ``PseudoTime.csv`` and ``refNetwork.csv``; the folder name is
``<network>-<cells>-<replicate>``. On the same files and with the same metric code
(:mod:`biostruct.grn.metrics`: AUPRC ratio, EPR, AP, AUROC, sign accuracy; self-loops excluded)
it runs, per dataset:

- track ``no_prior``: ``velocity`` (biostruct's default without a prior: the rank mix of the
  PHOENIX ensemble and the linear velocity field), and its two parts from the same fit
  (``velocity_neural``, ``velocity_linear``), seeds ``--seeds``;
  with ``--with-dense`` also dense PHOENIX on the same cell transitions (one seed);
- tracks ``prior_0.25`` / ``prior_0.5``: the reference network with 25 % / 50 % of its edges
  moved (``corrupt_prior``, seeded by the replicate), scored alone (``prior_alone``) and as
  ``posterior`` (biostruct's default with a prior: the prior combined with the conditional
  velocity evidence, :func:`~biostruct.grn.velocity.conditional_evidence` then
  :func:`~biostruct.grn.velocity.combine_with_prior`, exactly what
  ``infer_grn(method="posterior")`` writes to ``varp[key]``, on the same seed's cell
  transitions); with ``--with-dash`` also DASH's pruned network;
- track ``baseline``: Pearson, partial correlation (Ledoit-Wolf), SINCERITIES-style ridge
  regression (:mod:`biostruct.grn.baselines`) and GRNBoost2 (arboreto's own per-target
  routine ``arboreto.core.infer_partial_network`` with its GRNBoost2 settings, run in the
  separate venv ``--arboreto-python``: arboreto 0.1.6's dask scheduling fails on current dask,
  so its per-target loop is called directly, seed 0).

Rows go to ``reports/benchmarks/grn_singlecell.json`` (``{"meta", "rows"}``) and a markdown
table with medians over seeds, then replicates (per network), then networks (family).
``peak_rss_mb`` is each run's own peak (forked child). Set up the GRNBoost2 venv with::

    python3.11 -m venv .venv-grnbench
    .venv-grnbench/bin/pip install arboreto "dask[distributed]" pandas scikit-learn

Examples::

    python benchmarks/grn_singlecell.py                 # the whole DEV set, 3 seeds
    python benchmarks/grn_singlecell.py --quick         # replicate 1 only, 1 seed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import _isolate  # noqa: E402

OUT_JSON = REPO / "reports" / "benchmarks" / "grn_singlecell.json"
OUT_MD = REPO / "reports" / "benchmarks" / "grn_singlecell.md"
PRIOR_LEVELS = (0.25, 0.5)
METRIC_KEYS = ("auprc_ratio", "epr", "ap", "auroc", "sign_accuracy")
#: the methods (row names) each job writes
KIND_METHODS = {
    "classic": frozenset({"pearson", "partial_correlation", "sincerities"}),
    "prior_alone": frozenset({"prior_alone"}),
    "grnboost2": frozenset({"grnboost2"}),
    "velocity": frozenset({"velocity", "velocity_neural", "velocity_linear"}),
    "posterior": frozenset({"posterior"}),
    "dense": frozenset({"phoenix_dense"}),
    "dash": frozenset({"dash"}),
}

_GRNBOOST2 = r"""
import sys, pandas as pd
from arboreto import core
x = pd.read_csv(sys.argv[1], index_col=0).T
genes, m = list(x.columns), x.values
rows = [core.infer_partial_network(regressor_type="GBM", regressor_kwargs=core.SGBM_KWARGS,
        tf_matrix=m, tf_matrix_gene_names=genes, target_gene_name=g,
        target_gene_expression=m[:, j], include_meta=False,
        early_stop_window_length=core.EARLY_STOP_WINDOW_LENGTH, seed=int(sys.argv[3]))
        for j, g in enumerate(genes)]
pd.concat(rows).to_csv(sys.argv[2], index=False)
"""


def _metrics(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from biostruct.grn import metrics

    return {
        "auprc_ratio": metrics.auprc_ratio(pred, truth),
        "epr": metrics.epr(pred, truth),
        "ap": metrics.average_precision(pred, truth),
        "auroc": metrics.auroc(pred, truth),
        "sign_accuracy": metrics.sign_accuracy(pred, truth),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _job(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One model or baseline on one dataset; returns finished rows (scores included)."""
    import torch

    import biostruct as bs
    from biostruct.datasets import corrupt_prior, read_beeline
    from biostruct.grn import baselines
    from biostruct.grn.model import GRNModel
    from biostruct.grn.pseudotime import lineage_times
    from biostruct.grn.velocity import combine_with_prior, conditional_evidence

    torch.set_num_threads(1)
    adata = read_beeline(spec["path"])
    truth = np.asarray(adata.varp["truth"])
    keys = list(adata.uns["pseudotime_keys"])
    kind, seed = spec["kind"], spec["seed"]
    base = {"dataset": spec["dataset"], "network": spec["network"], "replicate": spec["rep"]}
    out: list[dict[str, Any]] = []

    def add(method: str, track: str, pred: np.ndarray, seconds: float, **extra: Any) -> None:
        row = {**base, "method": method, "track": track, "seed": seed}
        row.update(_metrics(pred, truth))
        row.update(train_seconds=seconds, peak_rss_mb=_peak_mb(), **extra)
        out.append(row)

    priors = {f: corrupt_prior(truth, f / 2, seed=spec["rep"]) for f in PRIOR_LEVELS}
    t0 = time.perf_counter()
    if kind == "velocity":
        model = bs.tl.infer_grn(adata, time_key=keys, method="velocity", seed=seed)
        sec = time.perf_counter() - t0
        warn = list(adata.uns["grn"]["warnings"])
        ens = model.velocity
        # one fit, three read-outs: the default (mixed) and its two parts
        add("velocity", "no_prior", np.asarray(adata.varp["grn"]), sec, warnings=warn)
        add("velocity_neural", "no_prior", ens.neural, sec, warnings=warn)
        add("velocity_linear", "no_prior", ens.linear, sec)
    elif kind == "posterior":
        # what infer_grn(method="posterior") writes to varp[key] (DASH's network aside: it is
        # trained separately with --with-dash), on this seed's cell transitions
        transitions = GRNModel(adata, time_key=keys, seed=seed, device="cpu")._transition_arrays()
        setup = time.perf_counter() - t0  # cell transitions: shared by both prior levels
        for f, p in priors.items():
            t1 = time.perf_counter()
            post, info = combine_with_prior(conditional_evidence(*transitions, p), p)
            add("posterior", f"prior_{f}", post, setup + time.perf_counter() - t1, **info)
    elif kind == "dense":
        bs.tl.infer_grn(adata, time_key=keys, method="dense", seed=seed, **spec["kwargs"])
        add("phoenix_dense", "no_prior", np.asarray(adata.varp["grn"]), time.perf_counter() - t0)
    elif kind == "dash":
        for f, p in priors.items():
            t1 = time.perf_counter()
            adata.varp["prior"] = p
            bs.tl.infer_grn(
                adata, "prior", time_key=keys, method="dash", seed=seed, **spec["kwargs"]
            )
            add("dash", f"prior_{f}", np.asarray(adata.varp["grn"]), time.perf_counter() - t1)
    elif kind == "prior_alone":
        for f, p in priors.items():
            add("prior_alone", f"prior_{f}", p, 0.0)
    elif kind == "classic":
        x = np.asarray(adata.X, dtype=np.float64)
        lt = lineage_times(adata, keys)
        for name, fn in (
            ("pearson", lambda: baselines.pearson(x)),
            ("partial_correlation", lambda: baselines.partial_correlation(x)),
            ("sincerities", lambda: baselines.sincerities(x, lt)),
        ):
            t1 = time.perf_counter()
            pred = fn()
            add(name, "baseline", pred, time.perf_counter() - t1)
    elif kind == "grnboost2":
        with tempfile.TemporaryDirectory() as tmp:
            out_csv = Path(tmp) / "net.csv"
            subprocess.run(
                [
                    spec["arboreto_python"],
                    "-c",
                    _GRNBOOST2,
                    str(Path(spec["path"]) / "ExpressionData.csv"),
                    str(out_csv),
                    str(seed),
                ],
                check=True,
                capture_output=True,
            )
            import pandas as pd

            net = pd.read_csv(out_csv)
        index = {g: i for i, g in enumerate(adata.var_names)}
        pred = np.zeros_like(truth, dtype=np.float64)
        for s, t, w in net[["TF", "target", "importance"]].itertuples(index=False):
            pred[index[str(s)], index[str(t)]] = w
        np.fill_diagonal(pred, 0.0)
        add("grnboost2", "baseline", pred, time.perf_counter() - t0)
    else:  # pragma: no cover
        raise ValueError(kind)
    return out


# ---------------------------------------------------------------------------- report
def _median(values: list[float]) -> float:
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.median(v)) if v else float("nan")


def per_network(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str, str], float]:
    """(network, track, method) -> median over replicates of the mean over seeds."""
    by: dict[tuple[str, str, str, int], list[float]] = {}
    for r in rows:
        by.setdefault((r["network"], r["track"], r["method"], r["replicate"]), []).append(r[key])
    rep: dict[tuple[str, str, str], list[float]] = {}
    for (net, track, method, _), v in by.items():
        rep.setdefault((net, track, method), []).append(float(np.mean(v)))
    return {k: _median(v) for k, v in rep.items()}


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's acceptance checks, computed from the rows."""
    lines = []
    ratio, epr = per_network(rows, "auprc_ratio"), per_network(rows, "epr")
    nets = sorted({k[0] for k in ratio})

    def best(tab: dict, net: str, tracks: tuple[str, ...]) -> tuple[str, float]:
        cand = [(m, v) for (n, t, m), v in tab.items() if n == net and t in tracks]
        return max(cand, key=lambda mv: mv[1]) if cand else ("-", float("nan"))

    wins = 0
    for net in nets:
        om, ov = best(ratio, net, ("no_prior",))
        bm, bv = best(ratio, net, ("baseline",))
        oe, ove = best(epr, net, ("no_prior",))
        be, bve = best(epr, net, ("baseline",))
        ok = ov >= bv and ove >= bve
        wins += ok
        lines.append(
            f"- {net}: best biostruct no-prior AUPRC ratio {ov:.2f} ({om}) vs best baseline "
            f"{bv:.2f} ({bm}); EPR {ove:.2f} ({oe}) vs {bve:.2f} ({be}): "
            f"{'met' if ok else 'NOT met'}"
        )
    lines.append(f"- networks where no-prior >= best baseline on both: {wins} of {len(nets)}")
    methods = {m for (_, t, m) in ratio if t in ("no_prior", "baseline")}
    fam = {m: _median([v for (_, _, mm), v in ratio.items() if mm == m]) for m in methods}
    if fam:
        top = max(fam, key=lambda m: fam[m])
        lines.append(
            "- family median AUPRC ratio: "
            + ", ".join(f"{m} {v:.2f}" for m, v in sorted(fam.items(), key=lambda kv: -kv[1]))
            + f" (highest: {top})"
        )
    for f in PRIOR_LEVELS:
        track = f"prior_{f}"
        ok_all = True
        parts = []
        for net in nets:
            pv = ratio.get((net, track, "posterior"), float("nan"))
            av = ratio.get((net, track, "prior_alone"), float("nan"))
            ok_all &= pv > av
            parts.append(f"{net} {pv:.2f} vs {av:.2f}")
        lines.append(
            f"- {track}: posterior vs prior alone (AUPRC ratio): {'; '.join(parts)}: "
            f"{'met' if ok_all else 'NOT met'} on every network"
        )
    return lines


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    rows = doc["rows"]
    tabs = {k: per_network(rows, k) for k in ("auprc_ratio", "epr", "ap", "train_seconds")}
    nets = sorted({k[0] for k in tabs["auprc_ratio"]})
    combos = sorted(
        {(k[1], k[2]) for k in tabs["auprc_ratio"]}, key=lambda tm: (tm[0] != "no_prior", tm)
    )
    lines = [
        "# GRN on single cells with pseudotime (BEELINE-format DEV set)",
        "",
        f"Machine: {doc['meta']['machine']}. Data: `{doc['meta']['data']}`. Seeds (models): "
        f"{doc['meta']['seeds']} (velocity and posterior: 3 seeds per replicate; dense PHOENIX "
        "and DASH, when present: seed 0 on replicate 1 only). Medians over replicates of the "
        "mean over seeds; 'family' = median over networks. GRNBoost2: arboreto's per-target "
        "routine, seed 0. Generated by `benchmarks/grn_singlecell.py`.",
        "",
    ]
    for key, title in (("auprc_ratio", "AUPRC ratio"), ("epr", "EPR"), ("ap", "AP")):
        lines += [f"## {title}", "", "| track | method | " + " | ".join(nets) + " | family |"]
        lines.append("|---|---|" + "---|" * (len(nets) + 1))
        for track, method in combos:
            vals = [tabs[key].get((n, track, method), float("nan")) for n in nets]
            lines.append(
                f"| {track} | {method} | "
                + " | ".join(f"{v:.2f}" for v in vals)
                + f" | {_median(vals):.2f} |"
            )
        lines.append("")
    lines += ["## Seconds per run (median)", "", "| track | method | " + " | ".join(nets) + " |"]
    lines.append("|---|---|" + "---|" * len(nets))
    for track, method in combos:
        vals = [tabs["train_seconds"].get((n, track, method), float("nan")) for n in nets]
        lines.append(f"| {track} | {method} | " + " | ".join(f"{v:.1f}" for v in vals) + " |")
    lines += ["", "## Acceptance checks (issue: GRN on single-cell pseudotime data)", ""]
    lines += verdicts(rows)
    warned = [r for r in rows if r.get("warnings")]
    lines += ["", f"Runs with fit-quality warnings: {len(warned)} of {len(rows)}."]
    for r in warned[:10]:
        lines.append(f"- {r['dataset']} {r['method']} seed {r['seed']}: {r['warnings'][0]}")
    text = "\n".join(lines) + "\n"
    _atomic_write(path, text)


_atomic_write = _isolate.atomic_write


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    data_dir = Path(os.environ.get("BIOSTRUCT_DATA_DIR", REPO.parent / "shared" / "data"))
    ap.add_argument("--data", type=Path, default=data_dir / "grn" / "dev_boolode")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--quick", action="store_true", help="replicate 1 only, seed 0")
    ap.add_argument("--with-dense", action="store_true", help="also dense PHOENIX (seed 0)")
    ap.add_argument("--with-dash", action="store_true", help="also DASH on the prior tracks")
    ap.add_argument("--epochs", type=int, default=60, help="epochs of dense/DASH runs")
    ap.add_argument("--arboreto-python", default=str(REPO / ".venv-grnbench" / "bin" / "python"))
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    ap.add_argument(
        "--kinds",
        default="classic,prior_alone,grnboost2,velocity,posterior,dense,dash",
        help="jobs to run; with --merge, rows of other jobs are kept from --out",
    )
    ap.add_argument("--merge", action="store_true", help="keep rows of jobs not run now")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    folders = sorted(p for p in args.data.iterdir() if (p / "ExpressionData.csv").exists())
    if args.quick:
        folders = [p for p in folders if p.name.endswith("-1")]
    have_arboreto = Path(args.arboreto_python).exists()
    specs = []
    for p in folders:
        network, rep = p.name.rsplit("-", 2)[0], int(p.name.rsplit("-", 1)[1])
        base = {"path": str(p), "dataset": p.name, "network": network, "rep": rep, "kwargs": {}}
        specs.append({**base, "kind": "classic", "seed": 0})
        specs.append({**base, "kind": "prior_alone", "seed": 0})
        if have_arboreto:
            specs.append(
                {**base, "kind": "grnboost2", "seed": 0, "arboreto_python": args.arboreto_python}
            )
        for s in seeds:
            specs.append({**base, "kind": "velocity", "seed": s})
            specs.append({**base, "kind": "posterior", "seed": s})
        kw = {"epochs": args.epochs, "batch_size": 128}
        if args.with_dense:
            specs.append({**base, "kind": "dense", "seed": 0, "kwargs": kw})
        if args.with_dash:
            specs.append({**base, "kind": "dash", "seed": 0, "kwargs": kw})
    import torch

    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.processor() or 'cpu'}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": 1,
        "data": str(args.data),
        "seeds": seeds,
        "grnboost2": "arboreto per-target GRNBoost2 (seed 0)"
        if have_arboreto
        else "not run: no venv",
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "peak_rss_mb": "per job (forked child), one job = one method on one dataset",
    }
    kinds = set(args.kinds.split(","))
    specs = [sp for sp in specs if sp["kind"] in kinds]
    rows: list[dict[str, Any]] = []
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text())
        methods_now = {KIND_METHODS[k] for k in kinds if k in KIND_METHODS}
        rows = [r for r in old["rows"] if r["method"] not in set().union(*methods_now)]
        meta["merged_from"] = old["meta"].get("started")
    for i, spec in enumerate(specs, 1):
        t0 = time.perf_counter()
        rows += _isolate.run_isolated(_job, spec)
        print(
            f"[{i}/{len(specs)}] {spec['dataset']} {spec['kind']} seed {spec['seed']}: "
            f"{time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        doc = {"meta": meta, "rows": rows}
        _atomic_write(args.out, json.dumps(doc, indent=1, default=_json_default))
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    meta["seeds"] = sorted({int(r["seed"]) for r in rows})  # merged runs: every seed present
    _atomic_write(
        args.out, json.dumps({"meta": meta, "rows": rows}, indent=1, default=_json_default)
    )
    write_markdown({"meta": meta, "rows": rows}, args.out.with_suffix(".md"))
    print("\n".join(verdicts(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
