"""The built wheel works on its own: a fresh venv with only the wheel of biostruct installed runs
``biostruct run grn`` from an empty folder, and ``biostruct workflow init`` copies the workflow.

The wheel is built offline (``pip wheel --no-build-isolation``) from a copy of the package
sources. The fresh venv has no pip and none of the dependencies: the wheel is installed into it
with ``--no-deps``, and only then a ``.pth`` line makes this environment's site-packages (torch,
scanpy, snakemake, ...) importable behind it, as the Makefile's "torch first" would have. The
editable install of this checkout is not active there (its ``.pth`` is not processed), so every
``biostruct`` module and workflow file comes from the wheel; the tests check that.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_SRC = REPO / "biostruct" / "workflows"

TINY_GRN = """\
seed: 0
device: cpu
grn:
  run: [tiny]
  datasets:
    tiny:
      source: simulate
      simulate: {n_trajectories: 3, times: [0, 2, 3, 7, 9]}
      n_genes: 20
      truth: true_network
  methods: [dash]
  priors: [prior_noise_0.05]
  fit: {hidden: 8, epochs: 2, knockouts: 1}
multiomics:
  enabled: false
"""


def _clean_env(venv: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "BIOSTRUCT_WORKFLOW",
            "BIOSTRUCT_PIP_SPEC",
            "PYTHONPATH",
            "VIRTUAL_ENV",
            "PYTHONHOME",
        )
    }
    env.update(
        PATH=os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"]),
        OMP_NUM_THREADS="1",
        OMP_WAIT_POLICY="PASSIVE",
        MPLBACKEND="Agg",
        PYTHONNOUSERSITE="1",
    )
    return env


def _tracked_workflow_files() -> set[str]:
    """Workflow files that belong in the wheel: the source tree less caches and run state."""
    out = set()
    for p in WORKFLOW_SRC.rglob("*"):
        rel = p.relative_to(WORKFLOW_SRC)
        if p.is_file() and not any(
            part.startswith(".") or part == "__pycache__" for part in rel.parts
        ):
            out.add(rel.as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built offline from a copy of the sources (the checkout stays clean)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(
        REPO / "biostruct",
        src / "biostruct",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake"),
    )
    out = root / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = out.glob("biostruct-*.whl")
    return whl


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel; dependencies come from this environment (see above)."""
    venv = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--quiet", "--no-deps"]
        + ["--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    here = sysconfig.get_paths()["purelib"]
    (Path(site) / "zz_biostruct_test_deps.pth").write_text(here + "\n")
    return venv


def test_wheel_ships_every_workflow_file(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    shipped = {n.removeprefix("biostruct/workflows/") for n in names if "/workflows/" in n}
    missing = _tracked_workflow_files() - shipped
    assert not missing, f"package-data misses workflow files: {sorted(missing)}"
    assert {"Snakefile", "rules/grn.smk", "schemas/config.schema.yaml"} <= shipped


def test_installed_biostruct_is_the_wheel(venv, wheel):
    py = venv / "bin" / "python"
    code = (
        "import biostruct, biostruct.cli as c; print(biostruct.__file__); "
        "print(c.workflow_dir()); print(c.pip_install_spec())"
    )
    proc = subprocess.run(
        [str(py), "-c", code],
        capture_output=True,
        text=True,
        env=_clean_env(venv),
        cwd=venv.parent,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    module, wf, spec = proc.stdout.split()
    assert Path(module).is_relative_to(venv), module
    assert Path(wf).is_relative_to(venv) and (Path(wf) / "Snakefile").is_file(), wf
    # --sdm conda's environment installs biostruct from the wheel it was installed from
    assert Path(spec) == wheel, spec


def test_run_grn_from_an_empty_folder(venv, tmp_path):
    run = tmp_path / "empty"
    run.mkdir()
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_GRN)
    proc = subprocess.run(
        [str(venv / "bin" / "biostruct"), "run", "grn", "--cores", "2", "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=_clean_env(venv),
        cwd=run,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    first = proc.stdout.splitlines()[0]
    assert f"--snakefile {venv}" in first, first  # the installed workflow, not the checkout's
    fit = run / "results/grn/tiny/dash/prior_noise_0.05"
    for name in ("result.h5ad", "edges.csv", "metrics.json", "report.html"):
        assert (fit / name).stat().st_size > 0, name
    assert (run / "results/grn/summary.csv").read_text().count("\n") >= 2

    # every JSON the pipeline wrote parses with a strict parser (no NaN/Infinity)
    def refuse(const: str):
        raise ValueError(f"non-standard JSON constant {const}")

    files = sorted(run.rglob("*.json"))
    assert fit / "metrics.json" in files
    for path in files:
        json.loads(path.read_text(), parse_constant=refuse)


def test_workflow_init_copies_an_editable_workflow(venv, tmp_path):
    dest = tmp_path / "mywf"
    env = _clean_env(venv)
    exe = str(venv / "bin" / "biostruct")
    proc = subprocess.run(
        [exe, "workflow", "init", str(dest)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    wf = dest / "workflow"
    copied = {p.relative_to(wf).as_posix() for p in wf.rglob("*") if p.is_file()}
    assert _tracked_workflow_files() <= copied
    assert (dest / "config" / "config.yaml").read_text() == (
        WORKFLOW_SRC / "config" / "template_own_data.yaml"
    ).read_text()

    # a second init refuses to overwrite, naming the folder and the fix
    again = subprocess.run(
        [exe, "workflow", "init", str(dest)], capture_output=True, text=True, env=env, timeout=120
    )
    assert again.returncode == 2
    assert "exists already" in again.stderr and "--force" in again.stderr

    # the copy is what `biostruct run --workflow` uses: an edit there shows in a dry run
    rules = dest / "workflow" / "rules" / "grn.smk"
    rules.write_text(rules.read_text().replace("rule grn_summary:", "rule grn_summary_edited:"))
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_GRN)
    dry = subprocess.run(
        [exe, "run", "grn", "-n", "--workflow", str(dest), "--config", str(cfg)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "grn_summary_edited" in dry.stdout
