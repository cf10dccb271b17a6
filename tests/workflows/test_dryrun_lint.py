"""Dry runs of both pipelines on every shipped config, and `snakemake --lint`."""

from __future__ import annotations

import re

import pytest
import yaml
from wfhelpers import CONFIGS, TINY, snakemake

_GRN_RULES = {"grn_prepare", "grn_fit", "grn_evaluate", "grn_report", "grn_summary"}
_MO_RULES = {"multiomics_prepare", "multiomics_fit", "multiomics_analyse", "multiomics_report"}


def _jobs(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.parametrize("config", [*CONFIGS, TINY], ids=lambda p: p.stem)
def test_dry_run_both_pipelines(tmp_path, config):
    proc = snakemake("all", "-n", "--cores", "1", "--configfile", str(config), workdir=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert _GRN_RULES | _MO_RULES <= set(_jobs(proc.stdout))
    assert not (tmp_path / "results").exists()


def test_fan_out_over_methods_and_priors(tmp_path):
    cfg = yaml.safe_load(TINY.read_text())
    cfg["grn"]["methods"] = ["dash", "dense", "l1"]
    cfg["grn"]["priors"] = ["prior_noise_0.0", "prior_noise_0.1"]
    path = tmp_path / "fan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = snakemake("grn_all", "-n", "--cores", "1", "--configfile", str(path), workdir=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = _jobs(proc.stdout)
    assert jobs["grn_fit"] == 6 and jobs["grn_report"] == 6 and jobs["grn_prepare"] == 1
    assert "results/grn/tiny/l1/prior_noise_0.1/fitted.h5ad" in proc.stdout


def test_gpu_resources_only_when_cuda(tmp_path):
    args = ("grn_all", "-n", "--cores", "1", "--configfile", str(TINY), "--printshellcmds")
    cpu = snakemake(*args, workdir=tmp_path)
    cuda = snakemake(*args, "--config", "device=cuda", "gpus_per_job=2", workdir=tmp_path)
    assert cpu.returncode == 0 and cuda.returncode == 0
    assert "gpu=2" in cuda.stdout and "gpu=2" not in cpu.stdout
    # executors such as Kubernetes react to the keys' presence: none of them on a CPU run
    assert "gpu_manufacturer=nvidia" in cuda.stdout and "cpus_per_gpu=4" in cuda.stdout
    assert "gpu_manufacturer" not in cpu.stdout and "cpus_per_gpu" not in cpu.stdout
    assert "--device cuda" in cuda.stdout


def test_lint_is_clean(tmp_path):
    proc = snakemake("--lint", workdir=tmp_path)
    assert proc.returncode == 0, proc.stdout
    assert "Lints for" not in proc.stdout
