"""Configs are code in Snakemake (YTE templates): `biostruct run` refuses them unless asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from biostruct.cli import check_run_config, main

REPO = Path(__file__).resolve().parents[2]
MARK = "PWNED_MARK"
YTE = f"""\
__use_yte__: true
seed: ?__import__("os").system("touch {MARK}") * 0
grn: {{enabled: false}}
multiomics: {{enabled: false}}
"""


@pytest.fixture()
def yte_config(tmp_path) -> Path:
    path = tmp_path / "yte.yaml"
    path.write_text(YTE)
    return path


def test_yte_payload_is_live_in_plain_snakemake(tmp_path, yte_config):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "workflows/Snakefile")]
    cmd += ["--directory", str(tmp_path), "--workflow-profile", "none", "--cores", "1", "-n"]
    subprocess.run([*cmd, "--configfile", str(yte_config)], cwd=tmp_path, capture_output=True)
    assert (tmp_path / MARK).exists()  # so the refusal below is tested against a live payload


def test_biostruct_run_refuses_yte(tmp_path, yte_config, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(["run", "grn", "--config", str(yte_config), "--directory", str(tmp_path), "-n"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "__use_yte__" in err and "--allow-yte" in err and "Traceback" not in err
    assert not (tmp_path / MARK).exists()
    # also when the template comes in through the options passed on to Snakemake
    plain = tmp_path / "plain.yaml"
    plain.write_text("grn: {enabled: false}\nmultiomics: {enabled: false}\n")
    rc = main(["run", "grn", "--config", str(plain), "-n", "--", "--configfile", str(yte_config)])
    assert rc == 2 and not (tmp_path / MARK).exists()


def test_allow_yte_is_an_explicit_opt_in(tmp_path, yte_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc = main(
        ["run", "grn", "--config", str(yte_config), "--directory", str(tmp_path), "-n"]
        + ["--allow-yte"]
    )
    assert rc == 0
    assert (tmp_path / MARK).exists()  # the user asked for it


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\n", "not valid YAML"),
        ("- 1\n- 2\n", "the top level must be a mapping"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
        ("a: !!python/object/apply:os.system ['touch PWNED_MARK']\n", "not valid YAML"),
        (
            "grn: {run: [sim690_dmeo], datasets: {sim690_demo: {source: simulate}}}\n",
            "did you mean 'sim690_demo'",
        ),
        ("multiomics: {datasets: {'x;rm -rf': {source: dataset, name: a}}}\n", "folder name"),
        ("grn: {priors: ['../up']}\n", "folder name"),
        ("grn: {methods: [dahs]}\n", "did you mean 'dash'"),
    ],
)
def test_config_reader_errors(tmp_path, monkeypatch, text, message):
    from biostruct.errors import ConfigError

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as exc:
        check_run_config(path)
    assert "Fix:" in str(exc.value)
    assert not (tmp_path / MARK).exists()
