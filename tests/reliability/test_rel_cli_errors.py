"""Bad files and options at the command line: one biostruct error line with the field and the
fix (and a did-you-mean where the value is chosen from a list), never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from biostruct.cli import main


@pytest.fixture()
def h5ad(tmp_path, tiny_adata):
    path = tmp_path / "prepared.h5ad"
    tiny_adata.write_h5ad(path)
    return path


def _err(capsys, argv: list[str]) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("biostruct: error: ") and "Fix:" in err
    assert "Traceback" not in err
    return err


def test_text_file_renamed_h5ad(tmp_path, capsys):
    bad = tmp_path / "cells.h5ad"
    bad.write_text("gene,cell\nA,1\n")
    err = _err(capsys, ["grn", "fit", str(bad), "--out", str(tmp_path / "o.h5ad")])
    assert "input: " in err and "not an HDF5 file" in err
    assert not (tmp_path / "o.h5ad").exists()


@pytest.mark.parametrize("suffix", [".h5ad", ".h5mu"])
def test_truncated_file(tmp_path, h5ad, capsys, suffix):
    raw = h5ad.read_bytes()
    if suffix == ".h5mu":
        import mudata as md

        md.set_options(pull_on_update=False)
        import anndata as ad

        md.MuData({"rna": ad.read_h5ad(h5ad)}).write(str(tmp_path / "full.h5mu"))
        raw = (tmp_path / "full.h5mu").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(raw[: len(raw) // 2])
    step = ["grn", "fit"] if suffix == ".h5ad" else ["multiomics", "fit"]
    err = _err(capsys, [*step, str(cut), "--out", str(tmp_path / f"o{suffix}")])
    assert "cannot be read as" in err or "not an HDF5 file" in err
    assert not (tmp_path / f"o{suffix}").exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("{lr: 0.01}", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"epochs": 3}', "use --epochs"),
        ('{"prior": "x"}', "use --prior"),
        ('{"lrr": 0.01}', "did you mean 'lr'?"),
        ('{"batchsize": 8}', "did you mean 'batch_size'?"),
    ],
)
def test_bad_train_kwargs(tmp_path, h5ad, capsys, kwargs, message):
    out = tmp_path / "o.h5ad"
    argv = ["grn", "fit", str(h5ad), "--out", str(out), "--epochs", "1", "--hidden", "4"]
    err = _err(capsys, [*argv, "--train-kwargs", kwargs])
    assert message in err and "--train-kwargs" in err
    assert not out.exists()


def test_train_kwargs_that_are_accepted(tmp_path, h5ad, capsys):
    out = tmp_path / "o.h5ad"
    argv = ["grn", "fit", str(h5ad), "--out", str(out), "--epochs", "1", "--hidden", "4"]
    argv += ["--knockouts", "0", "--truth", "none", "--device", "cpu"]
    assert main([*argv, "--train-kwargs", '{"lr": 0.005, "batch_size": 8, "every": 1}']) == 0
    assert out.exists()


def test_method_and_dataset_did_you_mean(tmp_path, h5ad, capsys):
    err = _err(capsys, ["grn", "fit", str(h5ad), "--method", "dahs", "--out", "x.h5ad"])
    assert "--method: unknown method 'dahs'" in err and "did you mean 'dash'?" in err
    err = _err(
        capsys,
        ["grn", "prepare", "--source", "dataset", "--name", "sim69", "--out", "x.h5ad"],
    )
    assert "--name: unknown dataset 'sim69'" in err and "did you mean 'sim690'?" in err


def test_unexpected_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import biostruct.cli as cli

    def boom(args):
        raise KeyError("deep inside")

    monkeypatch.setattr(cli, "cmd_datasets_list", boom)
    monkeypatch.delenv("BIOSTRUCT_DEBUG", raising=False)
    assert main(["datasets", "list"]) == 1
    err = capsys.readouterr().err
    assert "unexpected error: KeyError" in err and "BIOSTRUCT_DEBUG" in err


def test_cli_as_a_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "x.h5ad"
    bad.write_text("not hdf5")
    cmd = [sys.executable, "-m", "biostruct.cli", "grn", "evaluate", str(bad)]
    cmd += ["--edges", "e.csv", "--metrics", "m.json", "--out", "o.h5ad"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "not an HDF5 file" in proc.stderr


def test_misspelt_prior_key_and_result_over_the_prior(tmp_path, h5ad, capsys):
    out = str(tmp_path / "o.h5ad")
    err = _err(capsys, ["grn", "fit", str(h5ad), "--prior", "prir", "--out", out])
    assert "--prior: 'prir' is neither a key of varp" in err and "did you mean 'prior'?" in err
    err = _err(capsys, ["grn", "fit", str(h5ad), "--key", "prior", "--out", out])
    assert "--key:" in err and "overwrite its input" in err
    assert not (tmp_path / "o.h5ad").exists()


def test_more_cli_input_errors(tmp_path, h5ad, capsys):
    err = _err(capsys, ["datasets", "fetch", "snareseq_mpo"])
    assert "did you mean 'snareseq_mop'?" in err
    err = _err(capsys, ["multiomics", "fit", str(h5ad), "--graph", "{nope", "--out", "o.h5mu"])
    assert "--graph: not valid JSON" in err
    err = _err(
        capsys,
        ["multiomics", "analyse", str(h5ad), "--model-dir", str(tmp_path)]
        + ["--de-dir", str(tmp_path / "de"), "--out", str(tmp_path / "o.h5mu")],
    )
    assert "--key" in err or "input" in err
    with pytest.raises(SystemExit):  # argparse: a clear usage error, exit status 2
        main(["grn", "prepare", "--times", "0", "two", "--out", "x.h5ad"])
    assert "invalid float value: 'two'" in capsys.readouterr().err
