"""Real runs on the tiny config: readable results, reports, no-op re-runs, interruptions."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
from wfhelpers import SNAKEFILE, TINY, env, snakemake

from biostruct.multiomics.links import LINK_COLUMNS

GRN = "results/grn/tiny/dash/prior_noise_0.05"
MO = "results/multiomics/tiny"


def test_grn_results_are_readable(tiny_run):
    adata = ad.read_h5ad(tiny_run / GRN / "result.h5ad")
    assert adata.varp["grn"].shape == (30, 30)
    assert set(adata.uns["grn"]["metrics"]) >= {"auroc", "ap"}
    assert "grn_pred" in adata.layers
    assert {"knocked_out", "target", "effect"} <= set(adata.uns["grn"]["knockout"].columns)
    edges = pd.read_csv(tiny_run / GRN / "edges.csv")
    assert list(edges.columns[:4]) == ["source", "target", "weight", "sign"]
    assert np.all(np.diff(edges["weight"].abs().to_numpy()) <= 0)
    summary = pd.read_csv(tiny_run / "results/grn/summary.csv")
    assert summary["run"].tolist() == ["tiny/dash/prior_noise_0.05"]
    assert (tiny_run / GRN / "model").is_dir()
    assert (tiny_run / "logs/grn/tiny/dash/prior_noise_0.05/fit.log").exists()
    assert (tiny_run / "benchmarks/grn/tiny/dash/prior_noise_0.05/fit.tsv").exists()


def test_multiomics_results_are_readable(tiny_run):
    mdata = md.read_h5mu(tiny_run / MO / "analysed.h5mu")
    for comp in ("atac", "rna"):
        assert mdata.obsm[f"X_dagvae_{comp}"].shape[0] == mdata.n_obs
        assert mdata.obsm[f"X_dagvae_{comp}_umap"].shape == (mdata.n_obs, 2)
        assert f"dagvae_cluster_{comp}" in mdata.obs
    index = pd.read_csv(tiny_run / MO / "differential" / "index.csv")
    assert list(index.columns) == ["file", "comparison", "n_features", "n_de"]
    for f in index["file"]:
        assert "proba_de" in pd.read_csv(tiny_run / MO / "differential" / f).columns
    # the fit rule writes links.csv; the tiny graph has no links, so only its header
    links = pd.read_csv(tiny_run / MO / "links.csv")
    assert list(links.columns) == list(LINK_COLUMNS)
    assert links.empty


def test_reports_are_written(tiny_run):
    for path in (GRN + "/report.html", MO + "/report.html"):
        text = (tiny_run / path).read_text()
        assert text.count("window.PlotlyConfig") == 1
        assert 'id="provenance-json"' in text
        assert "grn.fit.epochs" in text  # the run's config is shown under provenance


def test_rerun_is_a_no_op(tiny_run):
    proc = snakemake("all", "--cores", "1", "--configfile", str(TINY), workdir=tiny_run)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Nothing to be done" in proc.stdout


def test_snakemake_zip_report(tiny_run, tmp_path):
    out = tmp_path / "report.zip"
    proc = snakemake("all", "--configfile", str(TINY), "--report", str(out), workdir=tiny_run)
    assert proc.returncode == 0, proc.stdout[-3000:]
    names = zipfile.ZipFile(out).namelist()
    assert "report/report.html" in names
    assert any(n.endswith("/report.html") and "/data/raw/" in n for n in names)
    assert any(n.endswith("summary.csv") for n in names)


def test_interrupted_fit_leaves_nothing_complete(tiny_run, tmp_path):
    # copy the prepared input into a fresh run directory, then kill Snakemake during the fit
    work = tmp_path / "run"
    (work / "results/grn/tiny").mkdir(parents=True)
    prepared = work / "results/grn/tiny/prepared.h5ad"
    prepared.write_bytes((tiny_run / "results/grn/tiny/prepared.h5ad").read_bytes())
    target = f"{GRN}/fitted.h5ad"
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        target,
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(work),
        "--workflow-profile",
        "none",
        "--cores",
        "1",
        "--configfile",
        str(TINY),
    ]
    proc = subprocess.Popen(
        cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    log = work / "logs/grn/tiny/dash/prior_noise_0.05/fit.log"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not log.exists():  # the shell creates it at job start
        if proc.poll() is not None:
            pytest.fail("snakemake finished before it could be interrupted")
        time.sleep(0.1)
    # Half a second in, the fit job is still importing torch/anndata (several seconds on these
    # machines), so the kill lands inside the job on a quiet machine too.
    time.sleep(0.5)
    assert proc.poll() is None, "the fit finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (work / target).exists()
    assert not (work / GRN / "model").exists()
    # Snakemake must want to run the fit again
    dry = snakemake(target, "-n", "--cores", "1", "--configfile", str(TINY), workdir=work)
    assert "grn_fit" in dry.stdout
    assert "Nothing to be done" not in dry.stdout


def test_atomic_writers_leave_no_partial_file(tmp_path):
    from biostruct.cli import _save_dir_atomic, write_atomic

    def broken(p):
        p.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "out.h5ad", broken, ".h5ad")

    def broken_dir(p):
        p.mkdir()
        (p / "model.pt").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        _save_dir_atomic(tmp_path / "model", broken_dir)
    assert list(tmp_path.iterdir()) == []
