"""``make demo``: both pipelines on the embedded defaults, on the CPU, through Snakemake.

Runs ``workflows/config/default.yaml`` (simulated SIM690 trajectories for the GRN pipeline, the
embedded SNARE-seq subsample for the multi-omics pipeline) in ``results/demo/``, prints where the
AnnData/MuData results and HTML reports are, and, when Chromium is installed, saves screenshots
of the two reports to ``reports/demo_grn.png`` and ``reports/demo_multiomics.png``.

Usage: ``python -m biostruct.demo [--cores N] [--directory DIR] [--no-screenshots]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _screenshots(run_dir: Path, out_dir: Path) -> list[Path]:
    from biostruct.report.browser import find_chromium, screenshot

    if find_chromium() is None:
        print("(no chromium found: skipping report screenshots)")
        return []
    shots = []
    for pattern, name in (
        ("results/grn/*/dash/*/report.html", "demo_grn"),
        ("results/multiomics/*/report.html", "demo_multiomics"),
    ):
        found = sorted(run_dir.glob(pattern))
        if found:
            shots.append(screenshot(found[0], out_dir / f"{name}.png", width=1400, height=900))
    return shots


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit status."""
    from biostruct.cli import main as cli_main

    parser = argparse.ArgumentParser(
        prog="python -m biostruct.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cores", default="2", help="CPU cores for Snakemake (default 2)")
    parser.add_argument("--directory", default="results/demo", help="run directory")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run_dir = Path(args.directory).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rc = cli_main(
        ["run", "all", "--device", "cpu", "--cores", str(args.cores), "--directory", str(run_dir)]
    )
    if rc != 0:
        print(
            f"biostruct demo: the pipelines failed (exit {rc}); see the logs under {run_dir}/logs",
            file=sys.stderr,
        )
        return rc
    minutes = (time.perf_counter() - t0) / 60
    res = run_dir / "results"
    print(f"\nbiostruct demo finished in {minutes:.1f} min. Results in {res}:")
    groups = (
        ("GRN results (AnnData)", "grn/*/*/*/result.h5ad"),
        ("GRN edge lists", "grn/*/*/*/edges.csv"),
        ("GRN metrics of every fit", "grn/summary.csv"),
        ("multi-omics results (MuData)", "multiomics/*/analysed.h5mu"),
        ("differential analyses", "multiomics/*/differential/index.csv"),
        ("HTML reports (open in a browser, work offline)", "*/**/report.html"),
    )
    for title, pattern in groups:
        files = sorted(res.glob(pattern))
        if files:
            print(f"  {title}:")
            for f in files:
                print(f"    {f}")
    if not args.no_screenshots:
        repo_reports = Path(__file__).resolve().parents[1] / "reports"
        for shot in _screenshots(run_dir, repo_reports if repo_reports.is_dir() else run_dir):
            print(f"  screenshot: {shot}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
