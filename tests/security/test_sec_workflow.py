"""Shell payloads in config values never run: names are checked, everything else is quoted.

The payloads are tried for real (the rules run their shell commands), and each test looks for
the file the payload would create.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflows" / "Snakefile"
MARK = "PWNED_MARK"


def _env() -> dict[str, str]:
    import os

    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return e


def _snakemake(workdir: Path, config: dict, *args: str) -> subprocess.CompletedProcess:
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
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
        "--cores",
        "1",
        *args,
        "--configfile",  # last: it takes several values
        str(cfg),
    ]
    return subprocess.run(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
        timeout=300,
    )


def _no_mark(root: Path) -> None:
    hits = [p for p in root.rglob("*") if p.name == MARK]
    assert hits == [], f"an injected command ran: {hits}"


def _grn_config(name: str, **dataset) -> dict:
    spec = {"source": "simulate", "simulate": {"n_trajectories": 2}, "n_genes": 10, **dataset}
    return {
        "grn": {"run": [name], "datasets": {name: spec}, "methods": ["dense"], "priors": ["none"]},
        "multiomics": {"enabled": False},
    }


@pytest.mark.parametrize("name", [f"x$(touch {MARK})", ".."])
def test_unsafe_dataset_names_are_refused_before_any_job(tmp_path, name):
    proc = _snakemake(tmp_path, _grn_config(name), "grn_all")
    assert proc.returncode != 0
    assert "cannot be used as a folder name" in proc.stdout, proc.stdout[-2000:]
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
    _no_mark(tmp_path)


@pytest.mark.parametrize("name", ["a/../b", "-rf", "a b", ".hidden", "x;y", "ok"])
def test_name_pattern_is_the_same_in_cli_and_workflow(name):
    import re

    from biostruct.cli import SAFE_NAME

    smk = (REPO / "workflows/rules/common.smk").read_text()
    pattern = re.search(r'^SAFE_NAME = r"(.+)"$', smk, re.M).group(1)
    assert pattern == SAFE_NAME.pattern
    assert bool(SAFE_NAME.fullmatch(name)) == (name == "ok")


def test_unsafe_dataset_name_through_the_cli(tmp_path):
    from biostruct.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(_grn_config(f"x$(touch {MARK})")))
    rc = main(["run", "grn", "--config", str(cfg), "--directory", str(tmp_path), "-n"])
    assert rc == 2
    _no_mark(tmp_path)


def test_payloads_in_config_values_reach_the_cli_as_plain_text(tmp_path):
    # the rule really runs: its shell gets the keys quoted, the CLI refuses them as unknown
    # columns, and the payload is only ever a string in the log
    key = f"x'$(touch {MARK})'"
    cfg = _grn_config("ok", trajectory_key=key, time_key=f"`touch {MARK}`;")
    proc = _snakemake(tmp_path, cfg, "results/grn/ok/prepared.h5ad")
    assert proc.returncode != 0
    log = (tmp_path / "logs/grn/ok/prepare.log").read_text()
    assert "not in obs" in log and "Traceback" not in log
    assert "`touch PWNED_MARK`;" in log
    _no_mark(tmp_path)
    assert not (tmp_path / "results/grn/ok/prepared.h5ad").exists()


def _tiny_mudata(path: Path, label: str) -> None:
    import anndata as ad
    import mudata as md
    import pandas as pd

    md.set_options(pull_on_update=False)
    rng = np.random.default_rng(0)
    n = 24
    obs = pd.DataFrame(index=[f"c{i}" for i in range(n)])
    rna = ad.AnnData(rng.poisson(2.0, size=(n, 15)).astype(np.float32), obs=obs.copy())
    atac = ad.AnnData((rng.random((n, 12)) < 0.4).astype(np.float32), obs=obs.copy())
    rna.var_names = [f"g{i}" for i in range(15)]
    atac.var_names = [f"p{i}" for i in range(12)]
    m = md.MuData({"rna": rna, "atac": atac})
    m.obs[label] = pd.Categorical(np.where(np.arange(n) % 2, "a's", "b"))
    m.write(str(path))


def test_label_with_quotes_and_payload_in_file_name(tmp_path):
    label = f"cell's type $(touch {MARK})"
    src = tmp_path / f"in$(touch {MARK}).h5mu"
    _tiny_mudata(src, label)
    cfg = {
        "grn": {"enabled": False},
        "multiomics": {
            "run": ["mo"],
            "datasets": {"mo": {"source": "file", "path": str(src), "label_key": label}},
        },
    }
    proc = _snakemake(tmp_path, cfg, "results/multiomics/mo/prepared.h5mu")
    assert proc.returncode == 0, proc.stdout[-3000:]
    import mudata as md

    out = md.read_h5mu(tmp_path / "results/multiomics/mo/prepared.h5mu")
    assert label in out.obs.columns
    _no_mark(tmp_path)
    # the report rule gets the same label as one argument
    dry = _snakemake(tmp_path, cfg, "results/multiomics/mo/report.html", "-n", "--printshellcmds")
    assert dry.returncode == 0, dry.stdout[-3000:]
    line = next(s for s in dry.stdout.splitlines() if "biostruct report multiomics" in s)
    argv = shlex.split(line.split("Shell command:", 1)[-1])
    assert argv[argv.index("--label-key") + 1] == label
    assert argv[argv.index("--title") + 1] == "Multi-omics: mo"
