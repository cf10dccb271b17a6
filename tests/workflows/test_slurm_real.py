"""The tiny GRN pipeline on a real one-node SLURM (Debian's slurmctld, slurmd and munge, started
here and stopped by pid; ``make test`` installs them) through the shipped ``slurm`` profile and
snakemake-executor-plugin-slurm. No Slurm accounting: job states come from squeue.

Checks: the run succeeds, its results are there, every job ran and COMPLETED, and no job went to
the ``gpu`` partition although the config names one (``cluster.gpu_partition``) and the device
is ``cpu``. Needs root and the Slurm binaries: in CI (``CI`` set) their absence is a failure,
elsewhere a skip that says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import slurmcluster
from wfhelpers import env

TINY_GRN = """\
seed: 0
device: cpu
cluster: {gpu_partition: gpu}
grn:
  run: [tiny]
  datasets:
    tiny:
      source: simulate
      simulate: {n_trajectories: 3, times: [0, 2, 3, 7, 9]}
      n_genes: 20
      truth: true_network
  methods: [dash]
  priors: [prior_noise_0.05]
  fit: {hidden: 8, epochs: 2, knockouts: 1}
multiomics:
  enabled: false
"""


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it starts slurmctld, slurmd and munged)"
    missing = slurmcluster.missing_binaries()
    if missing:
        return f"Slurm is not installed (missing {', '.join(missing)}; `make test` installs it)"
    return None


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = _unavailable()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"real-SLURM test cannot run in CI: {why}")
        pytest.skip(why)
    c = slurmcluster.Cluster(tmp_path_factory.mktemp("slurm"))
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_tiny_grn_through_the_slurm_profile(cluster, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_GRN)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "biostruct.cli", "run", "grn", "--profile", "slurm"]
    cmd += ["--config", str(cfg), "--directory", str(run), "--"]
    cmd += ["--slurm-init-seconds-before-status-checks", "1"]
    cmd += ["--seconds-between-status-checks", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=420)
    assert proc.returncode == 0, (
        proc.stdout[-4000:] + proc.stderr[-2000:] + "\n" + cluster.diagnostics()
    )
    fit = run / "results/grn/tiny/dash/prior_noise_0.05"
    for name in ("result.h5ad", "edges.csv", "metrics.json", "report.html"):
        assert (fit / name).stat().st_size > 0, name
    assert "submitted with SLURM jobid" in proc.stdout + proc.stderr

    jobs = cluster.jobs()
    rules = {j["comment"].split("_wildcards_")[0].removeprefix("rule_") for j in jobs}
    assert {"grn_prepare", "grn_fit", "grn_evaluate", "grn_report", "grn_summary"} <= rules
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs
    on_gpu = [j for j in jobs if j["partition"] != "cpu"]
    assert not on_gpu, f"CPU jobs sent to another partition: {on_gpu}"


def test_daemons_are_ours_and_running(cluster):
    assert {"slurmctld", "slurmd"} <= set(cluster.procs)
    assert all(p.poll() is None for p in cluster.procs.values())
    assert Path(slurmcluster.SLURM_CONF).read_text() == cluster.conf_text()
