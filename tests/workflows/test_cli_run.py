"""`biostruct run` / `biostruct workflow init` options: the workflow folder, the report format."""

from __future__ import annotations

import argparse

import pytest
from wfhelpers import REPO, TINY, biostruct

from biostruct import cli
from biostruct.errors import ConfigError


def test_packaged_workflow_is_found(monkeypatch):
    monkeypatch.delenv("BIOSTRUCT_WORKFLOW", raising=False)
    assert cli.workflow_dir() == REPO / "biostruct" / "workflows"
    assert (cli.workflow_dir() / "Snakefile").is_file()


@pytest.mark.parametrize("how", ["option", "env"])
def test_a_folder_without_snakefile_is_refused(tmp_path, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("BIOSTRUCT_WORKFLOW", str(tmp_path))
        with pytest.raises(ConfigError) as err:
            cli.workflow_dir()
        assert err.value.field == "BIOSTRUCT_WORKFLOW"
    else:
        with pytest.raises(ConfigError) as err:
            cli.workflow_dir(tmp_path)
        assert err.value.field == "--workflow"
    assert "workflow init" in err.value.fix


def test_html_report_is_refused_with_the_zip_form():
    proc = biostruct("run", "grn", "-n", "--config", str(TINY), "--report", "out.html")
    assert proc.returncode == 2
    assert "--report" in proc.stderr and "report.zip" in proc.stderr


def test_zip_report_is_passed_on(tmp_path):
    ns = argparse.Namespace(
        pipeline="grn", config=str(TINY), directory=str(tmp_path), cores="1", profile=None,
        dry_run=True, device=None, report="r.zip", snakemake_args=[], workflow=None,
    )  # fmt: skip
    cmd = cli.snakemake_command(ns)
    assert cmd[cmd.index("--report") + 1].endswith("r.zip") and "--report-after-run" in cmd


def test_init_then_force(tmp_path):
    dest = tmp_path / "proj"
    assert cli.main(["workflow", "init", str(dest), "--template", "demo"]) == 0
    cfg = dest / "config" / "config.yaml"
    assert cfg.read_text() == (cli.workflow_dir() / "config" / "default.yaml").read_text()
    assert cli.workflow_dir(dest) == (dest / "workflow").resolve()  # DIR or DIR/workflow
    (dest / "workflow" / "Snakefile").write_text("# edited\n")
    assert cli.main(["workflow", "init", str(dest)]) == 2  # refuses to overwrite
    assert (dest / "workflow" / "Snakefile").read_text() == "# edited\n"
    assert cli.main(["workflow", "init", str(dest), "--force"]) == 0
    assert (dest / "workflow" / "Snakefile").read_text().startswith("# biostruct pipelines")
    assert not list(dest.glob(".workflow.*"))  # no temporary folder left behind
