"""The SLURM profile without a cluster: the resources Snakemake resolves for every job (a dry run
with the shipped profile), turned into sbatch options by the plugin's own code
(snakemake-executor-plugin-slurm >= 2.8: ``get_submit_command``, ``set_gres_string`` and the
executor's partition choice, which reads the shipped partitions example).

What must hold: a CPU job never goes to a GPU partition and never asks for a GPU; a GPU job asks
for ``--gpus`` and ``--cpus-per-gpu`` (not ``--cpus-per-task``) and goes to a GPU partition; no
placeholder account; job states through squeue (clusters without accounting).
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from snakemake_executor_plugin_slurm import Executor
from snakemake_executor_plugin_slurm.partitions import read_partition_file
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string
from wfhelpers import REPO, TINY, WORKFLOW, snakemake

PROFILE = WORKFLOW / "profiles" / "slurm"
PARTITIONS = PROFILE / "partitions.example.yaml"
TRAIN_RULES = {"grn_fit", "multiomics_fit", "multiomics_analyse"}


class _Resources(dict):
    """What the plugin reads: ``job.resources.get(key)`` and ``job.resources.key``."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError as exc:
            raise AttributeError(key) from exc


class _Log:
    def __getattr__(self, _name):
        return lambda *a, **k: None


def _value(text: str):
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def resolved_resources(overrides: dict, workdir: Path, profile: Path = PROFILE) -> dict[str, dict]:
    """Rule name -> the resources Snakemake resolved for its job: a dry run of the tiny config
    with ``overrides`` on top, under ``profile``."""
    extra = workdir / "overrides.yaml"
    extra.write_text(yaml.safe_dump(overrides))
    proc = snakemake(
        "all", "-n", "--configfile", str(TINY), str(extra), "--workflow-profile", str(profile),
        workdir=workdir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    out: dict[str, dict] = {}
    for block in re.split(r"^(?:local)?rule ", proc.stdout, flags=re.M)[1:]:
        name = block.split(":", 1)[0]
        m = re.search(r"^\s+resources: (.*)$", block, re.M)
        res = dict(kv.split("=", 1) for kv in m.group(1).split(", ")) if m else {}
        out[name] = {k: _value(v) for k, v in res.items()}
    assert TRAIN_RULES <= set(out), sorted(out)
    return out


def sbatch(rule: str, resources: dict, partitions: Path | None = None) -> str:
    """The sbatch command line the plugin would run for this job (its own code)."""
    job = SimpleNamespace(name=rule, threads=1, resources=_Resources(resources))
    fake = SimpleNamespace(
        _partitions=read_partition_file(partitions) if partitions else None,
        _fallback_partition="CLUSTER_DEFAULT",  # no sinfo here: stands for the cluster's default
        logger=_Log(),
    )
    params = {
        "run_uuid": "uuid",
        "slurm_logfile": "log",
        "comment_str": f"rule_{rule}",
        "account": "",  # the profile names no account (checked below)
        "partition": Executor.get_partition_arg(fake, job),
        "workdir": "/work",
    }
    return get_submit_command(job, params) + set_gres_string(job)


def _partition(line: str) -> str:
    return re.search(r" -p (\S+)", line).group(1)


def test_profile_has_no_device_blind_or_placeholder_settings():
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert prof["executor"] == "slurm"
    assert prof["slurm-status-command"] == "squeue"  # works without slurmdbd
    defaults = prof.get("default-resources") or {}
    assert "slurm_account" not in defaults  # no placeholder account is ever sent
    assert "cpus_per_task" not in defaults  # it would beat cpus_per_gpu
    for rule, res in (prof.get("set-resources") or {}).items():
        bad = {"slurm_partition", "mem_mb", "cpus_per_task", "gpu", "runtime"} & set(res)
        assert not bad, f"set-resources {rule}: {bad} would apply whatever the device"


def test_plugin_floor_is_the_tested_version():
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'slurm = \["snakemake-executor-plugin-slurm>=2\.8', text)


@pytest.mark.parametrize("partitions", [None, PARTITIONS], ids=["config", "partition-file"])
def test_cpu_jobs_ask_for_no_gpu_and_avoid_gpu_partitions(tmp_path, partitions):
    over = {"device": "cpu"}
    if not partitions:
        over["cluster"] = {"cpu_partition": "cpu", "gpu_partition": "gpu"}
    res = resolved_resources(over, tmp_path)
    for rule, r in res.items():
        line = sbatch(rule, r, partitions)
        if partitions or rule in TRAIN_RULES:  # chosen from the file, or set by the config
            assert _partition(line) == "cpu", line
        else:  # left to the cluster's default partition
            assert _partition(line) == "CLUSTER_DEFAULT", line
        assert "--gpus" not in line and "--gres" not in line and "--cpus-per-gpu" not in line
        assert "--cpus-per-task=1" in line, line
        assert not {"gpu", "gpu_manufacturer", "cpus_per_gpu"} & set(r), (rule, r)
        assert " -A " not in line
    assert res["multiomics_fit"]["mem_mb"] == 8000  # the CPU value, not the GPU one


@pytest.mark.parametrize("partitions", [None, PARTITIONS], ids=["config", "partition-file"])
def test_gpu_jobs_get_gpus_and_cpus_per_gpu(tmp_path, partitions):
    cluster = {"gpu_partition": "gpu", "cpus_per_gpu": 6} if not partitions else {}
    res = resolved_resources({"device": "cuda", "gpus_per_job": 2, "cluster": cluster}, tmp_path)
    for rule in TRAIN_RULES:
        line = sbatch(rule, res[rule], partitions)
        assert _partition(line) == "gpu", line
        assert "--gpus=2" in line and "--cpus-per-task" not in line, line
        assert f"--cpus-per-gpu={6 if not partitions else 4}" in line, line
        assert "--mem 16000" in line and "-t 240" in line, line
    for rule in set(res) - TRAIN_RULES:  # preparation, evaluation, reports: CPU jobs
        line = sbatch(rule, res[rule], partitions)
        assert "--gpus" not in line and "gpu" not in _partition(line), line


def test_gpu_model_and_gres(tmp_path):
    res = resolved_resources({"device": "cuda", "cluster": {"gpu_model": "a100"}}, tmp_path)
    assert "--gpus=a100:1" in sbatch("grn_fit", res["grn_fit"], PARTITIONS)
    res = resolved_resources({"device": "cuda", "cluster": {"gres": "gpu:a100:1"}}, tmp_path)
    line = sbatch("grn_fit", res["grn_fit"], PARTITIONS)
    assert "--gres=gpu:a100:1" in line and "--gpus" not in line
    assert _partition(line) == "gpu" and "--cpus-per-gpu=4" in line


def test_the_check_catches_a_device_blind_profile(tmp_path):
    """The old profile's mistake (set-resources grn_fit: slurm_partition gpu) is detected."""
    bad = tmp_path / "bad_profile"
    bad.mkdir()
    prof = yaml.safe_load((PROFILE / "config.yaml").read_text())
    prof["set-resources"] = {"grn_fit": {"slurm_partition": "gpu", "mem_mb": 16000}}
    (bad / "config.yaml").write_text(yaml.safe_dump(prof))
    res = resolved_resources({"device": "cpu"}, tmp_path, profile=bad)
    assert _partition(sbatch("grn_fit", res["grn_fit"])) == "gpu"  # what the tests above reject
