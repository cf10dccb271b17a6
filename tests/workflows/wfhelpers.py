"""Helpers for workflow tests: run Snakemake and the biostruct CLI as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / "workflows"
SNAKEFILE = WORKFLOW / "Snakefile"
TINY = Path(__file__).with_name("tiny_config.yaml")
CONFIGS = sorted((WORKFLOW / "config").glob("*.yaml"))


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE", MPLBACKEND="Agg")
    return e


def snakemake(*args: str, workdir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m snakemake`` on the biostruct Snakefile; stdout and stderr merged (Snakemake
    prints its log, validation errors included, to stdout)."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--workflow-profile",
        "none",
        *args,
    ]
    return subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), timeout=timeout
    )


def biostruct(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "biostruct.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=timeout)
