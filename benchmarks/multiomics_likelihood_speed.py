"""Speed of the DAG-VAE's count and accessibility likelihoods: forward + backward of one minibatch.

Variants, measured side by side in one run (interleaved round by round, so slow phases of a
shared machine hit every variant alike), on the same tensors:

* ``pyro``: autograd through Pyro's distribution (``ZeroInflatedNegativeBinomial`` /
  ``Bernoulli``), what a Pyro model would use;
* ``closed_form``: :func:`biostruct.multiomics.likelihoods.zinb_log_prob` /
  ``BernoulliLikelihood.log_likelihood``, derivatives computed in the forward pass, non-zeros
  found with ``torch.nonzero``;
* ``closed_form_csr``: the same with the non-zero coordinates registered from the CSR matrix, as
  the training minibatches do (:func:`~biostruct.multiomics.likelihoods.register_nonzero`).

Shapes follow the DEV sets: 128 cells x 1,000 / 2,000 genes (10 % non-zero, counts 1-5) and
128 cells x 3,000 / 10,000 peaks (5 % open). Usage::

    OMP_NUM_THREADS=1 python benchmarks/multiomics_likelihood_speed.py [--rounds 30]

Writes ``reports/benchmarks/multiomics_likelihood_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyro.distributions as dist
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _isolate  # noqa: E402

from biostruct.multiomics.likelihoods import (  # noqa: E402
    BernoulliLikelihood,
    nb_logits,
    register_nonzero,
    zinb_log_prob,
)

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "reports" / "benchmarks"
N_CELLS = 128


def _sparse(n: int, m: int, density: float, gen: torch.Generator) -> torch.Tensor:
    counts = torch.randint(1, 6, (n, m), generator=gen).float()
    return counts * (torch.rand(n, m, generator=gen) < density)


def _registered(x: torch.Tensor) -> torch.Tensor:
    y = x.clone()
    rows, cols = torch.nonzero(y, as_tuple=True)
    register_nonzero(y, rows, cols)
    return y


def zinb_case(n_genes: int, gen: torch.Generator) -> dict[str, Callable[[], None]]:
    x = _sparse(N_CELLS, n_genes, 0.10, gen)
    xr = _registered(x)
    scale = torch.randn(N_CELLS, n_genes, generator=gen).requires_grad_(True)
    gate = torch.randn(N_CELLS, n_genes, generator=gen).requires_grad_(True)
    log_theta = torch.zeros(n_genes, requires_grad=True)
    lib = x.sum(-1, keepdim=True).clamp_min(1.0)

    def params() -> tuple[torch.Tensor, torch.Tensor]:
        mu = lib * torch.softmax(scale, -1)
        return mu, torch.nn.functional.softplus(log_theta) + 1e-4

    def pyro() -> None:
        mu, theta = params()
        d = dist.ZeroInflatedNegativeBinomial(
            total_count=theta.expand_as(mu),
            logits=nb_logits(mu, theta),
            gate_logits=gate,
            validate_args=False,
        )
        d.log_prob(x).sum(-1).mean().backward()

    def closed(data: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            mu, theta = params()
            zinb_log_prob(data, mu, theta, gate).sum(-1).mean().backward()

        return run

    return {"pyro": pyro, "closed_form": closed(x), "closed_form_csr": closed(xr)}


def bernoulli_case(n_peaks: int, gen: torch.Generator) -> dict[str, Callable[[], None]]:
    torch.manual_seed(0)
    lik = BernoulliLikelihood(n_peaks, 128)
    x = _sparse(N_CELLS, n_peaks, 0.05, gen)
    xr = _registered(x)
    h = torch.randn(N_CELLS, 128, generator=gen).requires_grad_(True)

    def pyro() -> None:
        aux = lik.auxiliary(x)
        lik.distribution(h, aux).log_prob((x > 0).float()).sum(-1).mean().backward()

    def closed(data: torch.Tensor) -> Callable[[], None]:
        def run() -> None:
            lik.log_likelihood(data, h, lik.auxiliary(data)).mean().backward()

        return run

    return {"pyro": pyro, "closed_form": closed(x), "closed_form_csr": closed(xr)}


def measure(variants: dict[str, Callable[[], None]], rounds: int, reps: int) -> dict[str, float]:
    """Median milliseconds per call of each variant over ``rounds`` interleaved rounds."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for f in variants.values():
        f()  # warm-up
    for _ in range(rounds):
        for k, f in variants.items():
            t0 = time.perf_counter()
            for _ in range(reps):
                f()
            times[k].append((time.perf_counter() - t0) / reps * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def to_markdown(result: dict) -> str:
    m = result["meta"]
    lines = [
        "# Likelihood speed: forward + backward of one minibatch",
        "",
        f"Host {m['host']}, torch {m['torch']}, {m['threads']} thread(s), {m['rounds']} "
        f"interleaved rounds, median ms per call. `python {m['command']}`.",
        "",
        "| likelihood | features | pyro (autograd) | closed form | closed form, CSR non-zeros "
        "| speed-up vs pyro |",
        "|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['likelihood']} | {r['n_features']} | {r['pyro']:.2f} | {r['closed_form']:.2f} "
            f"| {r['closed_form_csr']:.2f} | {r['pyro'] / r['closed_form_csr']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=str(OUT_DIR))
    args = ap.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    cases = [("zinb", g, zinb_case) for g in (1000, 2000)] + [
        ("bernoulli", p, bernoulli_case) for p in (3000, 10000)
    ]
    rows = []
    for name, n, build in cases:
        res = measure(build(n, gen), args.rounds, args.reps)
        rows.append({"likelihood": name, "n_features": n, "n_cells": N_CELLS, **res})
        print(rows[-1], flush=True)
    result = {
        "meta": {
            "command": "benchmarks/multiomics_likelihood_speed.py "
            + " ".join(argv if argv is not None else []),
            "host": f"{platform.node()} ({os.cpu_count()} CPUs, {platform.processor() or '?'})",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "rounds": args.rounds,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        "rows": rows,
    }
    out = Path(args.out)
    _isolate.atomic_write(out / "multiomics_likelihood_speed.json", json.dumps(result, indent=1))
    _isolate.atomic_write(out / "multiomics_likelihood_speed.md", to_markdown(result))
    print(f"wrote {out / 'multiomics_likelihood_speed'}.{{json,md}}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
