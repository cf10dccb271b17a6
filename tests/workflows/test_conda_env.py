"""The conda environment of ``--sdm conda`` installs this biostruct (its own source or wheel), not
a registry name that does not exist. Without conda here, the test does what conda does with the
file's ``pip:`` section: pip installs it as a requirements file, with BIOSTRUCT_PIP_SPEC set as
the workflow sets it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml
from wfhelpers import REPO, WORKFLOW

from biostruct.cli import pip_install_spec

ENV_FILE = WORKFLOW / "envs" / "biostruct.yaml"


def _pip_section() -> list[str]:
    env = yaml.safe_load(ENV_FILE.read_text())
    deps = env["dependencies"]
    assert any(str(d).replace(" ", "").startswith("python=3.11") for d in deps)
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    return pip


def test_no_registry_name_for_biostruct():
    assert "biostruct" not in [p.split("=")[0].split("<")[0].split(">")[0] for p in _pip_section()]
    assert "${BIOSTRUCT_PIP_SPEC}" in _pip_section()


def test_the_spec_is_this_checkout(monkeypatch):
    monkeypatch.delenv("BIOSTRUCT_PIP_SPEC", raising=False)
    assert pip_install_spec() == str(REPO)
    monkeypatch.setenv("BIOSTRUCT_PIP_SPEC", "/some/biostruct.whl")
    assert pip_install_spec() == "/some/biostruct.whl"


def test_pip_installs_biostruct_from_the_env_file(tmp_path):
    req = tmp_path / "condaenv.requirements.txt"  # what conda writes for the pip: section
    req.write_text("\n".join(_pip_section()) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "BIOSTRUCT_PIP_SPEC"}
    env["BIOSTRUCT_PIP_SPEC"] = str(REPO)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--no-index"]
        + ["--no-build-isolation", "--quiet", "--report", str(report), "-r", str(req)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (item,) = json.loads(report.read_text())["install"]
    assert item["metadata"]["name"] == "biostruct"
    assert item["download_info"]["url"] == REPO.as_uri()
