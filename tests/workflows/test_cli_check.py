"""The CLI a user meets first (issue #15, item 3): help with defaults for every option,
'biostruct check --config', config paths relative to the config file, 'missing: drop' for
priors, progress bars, obsm['X_umap'] on request, and 'datasets list' within the terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from biostruct.cli import build_parser, main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))


def _parsers(parser: argparse.ArgumentParser, name: str = "biostruct"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_every_option_has_help_and_shows_its_default():
    seen = 0
    for name, parser in _parsers(build_parser()):
        text = parser.format_help()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
                continue
            label = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{label} has no help text"
            default = action.default
            shown = action.nargs != 0 and default not in (None, "", []) and default is not False
            if shown and action.option_strings:
                seen += 1
                formatted = parser._get_formatter()._expand_help(action)
                assert "default" in formatted, f"{label}: default {default!r} not shown"
        assert "%(default)" not in text
    assert seen > 40


def test_grn_fit_help_explains_every_method(capsys):
    from biostruct.grn.methods import METHODS

    with pytest.raises(SystemExit) as exc:
        main(["grn", "fit", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "(default: 200)" in out and "(default: dash)" in out
    for method in METHODS:
        assert any(line.lstrip().startswith(method + " ") for line in out.splitlines()), method


# ---------------------------------------------------------------------------- check --config
@pytest.fixture()
def own_data(tmp_path):
    """data/tc.h5ad, data/prior.csv and config/config.yaml naming them by relative paths."""
    from sectiny import tiny_grn_adata

    data = tmp_path / "data"
    data.mkdir()
    tiny_grn_adata().write_h5ad(data / "tc.h5ad")
    (data / "prior.csv").write_text("source,target,weight\ng0,g1,1\ng1,g2,-1\ngX,g3,1\n")
    cfg = {
        "grn": {
            "run": ["tc"],
            "datasets": {
                "tc": {
                    "source": "file",
                    "path": "../data/tc.h5ad",
                    "prior_file": "../data/prior.csv",
                    "missing": "drop",
                    "time_key": "time",
                    "trajectory_key": "trajectory",
                }
            },
            "priors": ["prior"],
        },
        "multiomics": {"enabled": False},
    }
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg


def _write(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_check_accepts_paths_relative_to_the_config_file(own_data, tmp_path, monkeypatch, capsys):
    path, _ = own_data
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the config's folder: paths still resolve
    assert main(["check", "--config", str(path)]) == 0, capsys.readouterr().err
    assert "OK (grn tc)" in capsys.readouterr().out


def test_check_catches_a_wrong_time_key_and_a_missing_file(own_data, capsys):
    path, cfg = own_data
    cfg["grn"]["datasets"]["tc"]["time_key"] = "tme"
    cfg["multiomics"] = {
        "run": ["mo"],
        "datasets": {"mo": {"source": "file", "path": "../data/nope.h5mu"}},
    }
    assert main(["check", "--config", str(_write(path, cfg))]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err
    assert "grn.datasets.tc.time_key: 'tme' is not an obs column" in err
    assert "did you mean 'time'?" in err
    missing = str(path.parent.parent / "data" / "nope.h5mu")
    assert f"multiomics.datasets.mo.path: {missing} does not exist" in err
    assert "resolved against the config file's folder" in err


def test_check_catches_a_text_time_column_and_unknown_prior_keys(own_data, capsys):
    import anndata as ad

    path, cfg = own_data
    h5ad = path.parent.parent / "data" / "tc.h5ad"
    a = ad.read_h5ad(h5ad)
    a.obs["time"] = ["t" + str(v) for v in a.obs["time"]]
    a.write_h5ad(h5ad)
    cfg["grn"]["priors"] = ["prior", "prior_noise"]
    cfg["grn"]["datasets"]["tc"]["truth"] = "true_net"
    assert main(["check", "--config", str(_write(path, cfg))]) == 2
    err = capsys.readouterr().err
    assert "obs['time'] holds text, not numbers" in err
    assert "prior 'prior_noise' is neither a varp key" in err and "did you mean 'prior'?" in err
    assert "truth 'true_net' is not a varp key" in err


def test_check_prior_overlap_and_missing_drop(own_data, capsys):
    path, cfg = own_data
    del cfg["grn"]["datasets"]["tc"]["missing"]  # default: raise
    assert main(["check", "--config", str(_write(path, cfg))]) == 2
    err = capsys.readouterr().err
    assert "grn.datasets.tc.prior_file" in err and "gX" in err
    assert "set grn.datasets.tc.missing: drop" in err
    cfg["grn"]["datasets"]["tc"]["missing"] = "drop"
    assert main(["check", "--config", str(_write(path, cfg))]) == 0


def test_check_reports_schema_errors_by_key(own_data, capsys):
    path, cfg = own_data
    cfg["grn"]["fit"] = {"epochz": 3}
    cfg["grn"]["datasets"]["tc"]["missing"] = "ignore"
    assert main(["check", "--config", str(_write(path, cfg))]) == 2
    err = capsys.readouterr().err
    assert "grn.fit: Additional properties are not allowed ('epochz' was unexpected)" in err
    assert "grn.datasets.tc.missing: 'ignore' is not one of ['raise', 'drop']" in err


def test_run_dry_run_stops_on_a_missing_input(own_data, tmp_path, capsys):
    path, cfg = own_data
    cfg["grn"]["datasets"]["tc"]["path"] = "../data/gone.h5ad"
    rc = main(
        ["run", "grn", "--config", str(_write(path, cfg)), "-n", "--directory", str(tmp_path)]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "gone.h5ad does not exist" in err and "--no-check" in err
    assert not (tmp_path / ".snakemake").exists()  # Snakemake never started


def test_snakemake_resolves_paths_against_the_config_folder(own_data, tmp_path):
    from wfhelpers import snakemake

    path, _ = own_data
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = snakemake("-n", "-p", "--cores", "1", "--configfile", str(path), workdir=run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:]
    data = path.parent.parent / "data"
    assert f"--path {data / 'tc.h5ad'}" in proc.stdout
    assert f"--prior-file {data / 'prior.csv'} --prior-missing drop" in proc.stdout


# ---------------------------------------------------------------------------- steps
def test_prepare_prior_missing_drop(own_data, tmp_path, capsys):
    import anndata as ad

    data = own_data[0].parent.parent / "data"
    argv = ["grn", "prepare", "--source", "file", "--path", str(data / "tc.h5ad")]
    argv += ["--prior-file", str(data / "prior.csv"), "--out", str(tmp_path / "p.h5ad")]
    assert main(argv) == 2
    assert "gX" in capsys.readouterr().err
    assert main([*argv, "--prior-missing", "drop"]) == 0
    prior = ad.read_h5ad(tmp_path / "p.h5ad").varp["prior"]
    assert prior[0, 1] == 1 and prior[1, 2] == -1 and np.count_nonzero(prior) == 2


@pytest.mark.parametrize("flag", ["--progress", "--no-progress"])
def test_grn_fit_progress_bar_switch(own_data, tmp_path, capsys, flag):
    data = own_data[0].parent.parent / "data"
    argv = ["grn", "fit", str(data / "tc.h5ad"), "--method", "dense", "--epochs", "3"]
    argv += ["--hidden", "4", "--knockouts", "0", "--out", str(tmp_path / "f.h5ad"), flag]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert ("grn fit [dense]" in err) == (flag == "--progress")
    if flag == "--progress":
        assert "3/3" in err


def test_analyse_writes_x_umap_on_request(tmp_path, capsys):
    import mudata as md
    from sectiny import tiny_mudata

    md.set_options(pull_on_update=False)
    tiny_mudata().write(str(tmp_path / "in.h5mu"))
    fit = ["multiomics", "fit", str(tmp_path / "in.h5mu"), "--n-latent", "2"]
    fit += ["--max-epochs", "2", "--model-dir", str(tmp_path / "model")]
    assert main([*fit, "--out", str(tmp_path / "fit.h5mu"), "--no-progress"]) == 0
    assert "dag_vae [" not in capsys.readouterr().err
    analyse = ["multiomics", "analyse", str(tmp_path / "fit.h5mu"), "--max-groups", "0"]
    analyse += ["--model-dir", str(tmp_path / "model"), "--de-dir", str(tmp_path / "de")]
    analyse += ["--out", str(tmp_path / "out.h5mu")]
    assert main([*analyse, "--scanpy-umap", "rn"]) == 2
    assert "did you mean 'rna'?" in capsys.readouterr().err
    capsys.readouterr()
    fitted = md.read_h5mu(tmp_path / "fit.h5mu")  # random counts: give rna two clusters to test
    fitted.obs["dagvae_cluster_rna"] = np.where(np.arange(fitted.n_obs) % 2, "0", "1")
    fitted.obs["dagvae_cluster_rna"] = fitted.obs["dagvae_cluster_rna"].astype("category")
    fitted.write(str(tmp_path / "fit.h5mu"))
    analyse[analyse.index("--max-groups") + 1] = "1"
    more = ["--min-cells", "1", "--de-cells", "10", "--de-samples", "2", "--progress"]
    assert main([*analyse, *more, "--scanpy-umap", "rna"]) == 0
    assert "differential" in capsys.readouterr().err  # the progress bar of the comparisons
    out = md.read_h5mu(tmp_path / "out.h5mu")
    np.testing.assert_array_equal(out.obsm["X_umap"], out.obsm["X_dagvae_rna_umap"])
    assert len(list((tmp_path / "de").glob("de_*.csv"))) >= 1


def test_datasets_list_fits_the_terminal(monkeypatch, capsys):
    import os
    import shutil

    monkeypatch.setattr(
        shutil, "get_terminal_size", lambda fallback=None: os.terminal_size((100, 24))
    )
    assert main(["datasets", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 5 and max(map(len, lines)) <= 100
    assert any("sim690_demo" in line for line in lines)
