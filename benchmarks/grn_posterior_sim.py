"""The default prior method (``posterior``) against its own prior on the PHOENIX/DASH simulations.

For SIM690 and SIM350 at each noise level: 150 simulated training trajectories (seed 1000, as
``grn_sim.py``), the shipped noisy prior of that level, and the posterior edge score that
``bs.tl.infer_grn(adata, prior, method="posterior")`` writes to ``varp[key]`` (the conditional
velocity evidence of :func:`biostruct.grn.velocity.conditional_evidence` combined with the prior
by :func:`biostruct.grn.velocity.combine_with_prior`; DASH's network, which does not enter that
score, is benchmarked in ``grn_sim.py``). Same metric code as every GRN benchmark.

Writes ``reports/benchmarks/grn_posterior_sim.{json,md}``. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OUT = REPO / "reports" / "benchmarks" / "grn_posterior_sim"
CASES = (("sim690", 0.025), ("sim690", 0.05), ("sim690", 0.1), ("sim350", 0.025))


def main() -> int:
    import numpy as np
    import torch

    import biostruct.datasets as ds
    from biostruct.grn import metrics
    from biostruct.grn.model import GRNModel
    from biostruct.grn.velocity import combine_with_prior, conditional_evidence

    torch.set_num_threads(1)
    rows = []
    for name, noise in CASES:
        simulate = ds.simulate_sim690 if name == "sim690" else ds.simulate_sim350
        train = simulate(150, noise_sd=noise, seed=1000)
        shipped = ds.load(name)
        prior = np.asarray(shipped.varp[f"prior_noise_{noise}"])
        truth = np.asarray(shipped.varp["true_network"])
        t0 = time.perf_counter()
        model = GRNModel(train, prior, device="cpu")
        post, info = combine_with_prior(
            conditional_evidence(*model._transition_arrays(), model.prior), model.prior
        )
        sec = time.perf_counter() - t0
        for method, pred in (("posterior", post), ("prior_alone", prior)):
            rows.append(
                {
                    "dataset": name,
                    "noise": noise,
                    "method": method,
                    "ap": metrics.average_precision(pred, truth),
                    "auprc_ratio": metrics.auprc_ratio(pred, truth),
                    "auroc": metrics.auroc(pred, truth),
                    "epr": metrics.epr(pred, truth),
                    "seconds": sec if method == "posterior" else 0.0,
                    **(info if method == "posterior" else {}),
                }
            )
        print(rows[-2], flush=True)
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores",
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [
        "# Posterior (default prior method) vs its prior on SIM690 / SIM350",
        "",
        f"Machine: {meta['machine']}, {meta['date']}. 150 training trajectories (seed 1000).",
        "",
        "| dataset | noise | method | AP | AUPRC ratio | AUROC | EPR | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['noise']} | {r['method']} | {r['ap']:.4f} | "
            f"{r['auprc_ratio']:.1f} | {r['auroc']:.4f} | {r['epr']:.1f} | {r['seconds']:.1f} |"
        )
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
