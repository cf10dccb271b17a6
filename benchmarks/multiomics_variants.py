"""Paired A/B of DAG-VAE settings on small DEV subsets: the defaults against one variant.

Every (subsample, model seed) pair trains the defaults and the variant on the same cells with the
same seed (so the same validation split), each in its own process, and scores every latent with
``multiomics_dev.score`` (Leiden best-by-ARI and label-free, fine labels where a set has them).
The report gives both means and the mean of the paired differences with its standard error: on
550-cell subsets one subset or seed moves the CITE-seq ARI by up to 0.2, so an unpaired
comparison with numbers from another run cannot tell a 0.03 change from noise.

Usage::

    python benchmarks/multiomics_variants.py --tag kl75 --train '{"n_kl_annealing_epochs": 75}'
    python benchmarks/multiomics_variants.py --tag concat --init '{"integration": "concat"}'

``--init`` holds :class:`~biostruct.multiomics.DAGVAE` arguments, ``--train`` those of
``DAGVAE.train``. About 4 minutes per dataset on 2 CPUs at the defaults (550 cells, 3 subsets x
3 seeds x 2 settings). Writes ``reports/benchmarks/multiomics_variants/<tag>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import multiomics_dev as mdv  # noqa: E402

METRICS = ("ari", "nmi", "ari_label_free", "ari_fine")


def paired(rows: list[dict]) -> list[dict]:
    """Per (dataset, latent): mean of each setting and mean paired difference (variant minus
    defaults) with its standard error, for every metric present in both rows of a pair."""
    by_key: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        key = (r["dataset"], r["latent"], r["subsample"], r["seed"])
        by_key.setdefault(key, {})[r["setting"]] = r
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for (ds, latent, _, _), pair in sorted(by_key.items()):
        if {"default", "variant"} <= set(pair):
            groups.setdefault((ds, latent), []).append((pair["default"], pair["variant"]))
    out = []
    for (ds, latent), pairs in groups.items():
        row: dict = {"dataset": ds, "latent": latent, "pairs": len(pairs)}
        for m in METRICS:
            if not all(m in a and m in b for a, b in pairs):
                continue
            d = [b[m] - a[m] for a, b in pairs]
            row[m] = {
                "default": statistics.fmean(a[m] for a, _ in pairs),
                "variant": statistics.fmean(b[m] for _, b in pairs),
                "diff": statistics.fmean(d),
                "se": statistics.stdev(d) / math.sqrt(len(d)) if len(d) > 1 else float("nan"),
            }
        out.append(row)
    return out


def to_markdown(result: dict) -> str:
    meta = result["meta"]
    cells = (
        f"{meta['cells']} random cells per subset, subsets {meta['subsamples']}"
        if meta["cells"]
        else "all cells (--cells 0)"
    )
    lines = [
        f"# DAG-VAE A/B: {meta['tag']}",
        "",
        f"Command: `{meta['command']}`  ",
        f"Variant: init `{json.dumps(meta['init'])}`, train `{json.dumps(meta['train'])}`; "
        f"{cells}, model seeds {meta['seeds']}; host {meta['host']}; {meta['seconds']:.0f} s.",
        "",
        "| dataset | latent | pairs | metric | defaults | variant | variant - defaults (se) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result["summary"]:
        for m in METRICS:
            if m in s:
                v = s[m]
                lines.append(
                    f"| {s['dataset']} | {s['latent']} | {s['pairs']} | {m} | "
                    f"{v['default']:.3f} | {v['variant']:.3f} | {v['diff']:+.3f} ({v['se']:.3f}) |"
                )
    lines += [
        "",
        "Pairs share cells, seed and validation split; se is the standard error of the mean "
        "paired difference (a difference within about 2 se is noise). Metrics as in "
        "`multiomics_dev.md`.",
        "",
    ]
    return "\n".join(lines)


def parse_variant(init_json: str, train_json: str) -> tuple[dict, dict]:
    """The variant's ``DAGVAE`` and ``DAGVAE.train`` arguments from their JSON objects.

    Checked before any training starts, so that a typo fails at once with the option and the
    fix named instead of as a traceback from the first worker process.
    """
    import inspect
    from dataclasses import fields

    from biostruct.errors import ConfigError
    from biostruct.multiomics import DAGVAE
    from biostruct.multiomics.training import TrainConfig

    def named(fn: Any) -> set[str]:
        return set(inspect.signature(fn).parameters) - {"self", "kwargs"}

    # less what run_dagvae sets itself (the data, the pair's seed, no progress bar)
    allowed = {
        "--init": named(DAGVAE.__init__) - {"mdata", "seed"},
        "--train": (named(DAGVAE.train) | {f.name for f in fields(TrainConfig)}) - {"progress"},
    }
    out = []
    for option, text in (("--init", init_json), ("--train", train_json)):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"is not valid JSON ({e}).", field=option, fix='e.g. {"lr": 1e-3}'
            ) from e
        if not isinstance(value, dict):
            raise ConfigError("must be a JSON object.", field=option, fix='e.g. {"lr": 1e-3}')
        unknown = sorted(set(value) - allowed[option])
        if unknown:
            raise ConfigError(
                f"unknown argument(s) {unknown}.",
                field=option,
                fix="use one of " + ", ".join(sorted(allowed[option])),
            )
        out.append(value)
    if not any(out):
        raise ConfigError("no variant given.", field="--init/--train", fix="give one of them")
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tag", required=True, help="name of the report")
    ap.add_argument("--init", default="{}", help="DAGVAE arguments of the variant (JSON)")
    ap.add_argument("--train", default="{}", help="DAGVAE.train arguments of the variant (JSON)")
    ap.add_argument("--cells", type=int, default=550)
    ap.add_argument("--datasets", default="pbmc10k_cite_scmdc,snareseq_mop")
    ap.add_argument("--subsamples", default="0,1,2")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--method", default="dagvae", choices=("dagvae", "dagvae_rna_only"))
    ap.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "multiomics_variants"))
    args = ap.parse_args(argv)
    init, train = parse_variant(args.init, args.train)
    settings = {"default": ({}, {}), "variant": (init, train)}
    t0 = time.perf_counter()
    rows: list[dict] = []
    for ds in args.datasets.split(","):
        for sub in (int(s) for s in args.subsamples.split(",")):
            for seed in (int(s) for s in args.seeds.split(",")):
                for name, (i, t) in settings.items():
                    task = {
                        "dataset": ds,
                        "method": args.method,
                        "seed": seed,
                        "quick": args.cells,
                        "subsample": sub,
                        "init": i,
                        "train": t,
                    }
                    res = mdv.run_isolated(task)
                    for r in res:
                        if "skipped" in r:
                            raise SystemExit(f"{ds} {name} seed {seed}: {r['skipped']}")
                        r.update(setting=name, subsample=sub)
                        print(
                            f"[{time.perf_counter() - t0:5.0f}s] {ds} subset {sub} seed {seed} "
                            f"{name:8s} {r['latent']:12s} ARI {r['ari']:.3f}",
                            flush=True,
                        )
                    rows.extend(res)
    meta = {
        "tag": args.tag,
        "command": "python benchmarks/multiomics_variants.py " + " ".join(argv or sys.argv[1:]),
        "init": init,
        "train": train,
        "cells": args.cells,
        "subsamples": args.subsamples,
        "seeds": args.seeds,
        "host": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": time.perf_counter() - t0,
    }
    keep = ("dataset", "latent", "setting", "subsample", "seed", *METRICS, "train_seconds")
    result = {
        "meta": meta,
        "summary": paired(rows),
        "rows": [{k: r[k] for k in keep if k in r} for r in rows],
    }
    out = Path(args.out)  # _atomic_write creates it
    mdv._atomic_write(out / f"{args.tag}.json", json.dumps(result, indent=1, default=str))
    mdv._atomic_write(out / f"{args.tag}.md", to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
