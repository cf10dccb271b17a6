"""Config validation: schema defaults, and bad configs rejected before any job runs."""

from __future__ import annotations

import copy

import pytest
import yaml
from wfhelpers import CONFIGS, WORKFLOW, snakemake


def _validate(cfg: dict) -> dict:
    from snakemake.utils import validate

    cfg = copy.deepcopy(cfg)
    validate(cfg, str(WORKFLOW / "schemas" / "config.schema.yaml"))
    return cfg


def test_schema_fills_nested_defaults():
    cfg = _validate({"grn": {"run": []}})
    assert cfg["seed"] == 0 and cfg["device"] == "cpu"
    assert cfg["grn"]["fit"] == {"hidden": 40, "epochs": 200, "knockouts": 3, "train_kwargs": {}}
    assert cfg["grn"]["methods"] == ["dash"]
    assert cfg["multiomics"]["analyse"]["umap"] is True


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_are_valid(path):
    cfg = _validate(yaml.safe_load(path.read_text()))
    for part in ("grn", "multiomics"):
        assert set(cfg[part]["run"]) <= set(cfg[part]["datasets"])


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("device: gpu", "'gpu' is not one of ['auto', 'cpu', 'cuda']"),
        ("seed: -1", "-1 is less than the minimum of 0"),
        ("grn: {methods: [dahs]}", "'dahs' is not one of"),
        ("grn: {fit: {epochs: 0}}", "0 is less than the minimum of 1"),
        ("grn: {epochz: 3}", "Additional properties are not allowed ('epochz' was unexpected)"),
        ("grn: {run: [nope]}", "grn.run lists 'nope', which is not defined under grn.datasets"),
        (
            "multiomics: {datasets: {x: {source: file}}}",
            "'path' is a required property",
        ),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, snippet, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(snippet + "\n")
    proc = snakemake("-n", "--cores", "1", "--configfile", str(bad), workdir=tmp_path)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert not (tmp_path / "results").exists()


def test_bad_config_through_the_cli(tmp_path):
    from wfhelpers import biostruct

    bad = tmp_path / "bad.yaml"
    bad.write_text("device: tpu\n")
    proc = biostruct("run", "grn", "--config", str(bad), "--directory", str(tmp_path), "-n")
    assert proc.returncode != 0
    assert "'tpu' is not one of" in proc.stdout + proc.stderr
    missing = biostruct("run", "grn", "--config", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith("biostruct: error: --config:")
    assert "Traceback" not in missing.stderr
