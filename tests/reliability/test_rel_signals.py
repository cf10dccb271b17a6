"""`biostruct run` under signals: SIGTERM reaches Snakemake and its jobs; a SIGKILLed run leaves
a lock that the next run explains, and `--unlock` clears it. After SIGTERM, a rerun completes
the fit with the network of an uninterrupted run. The kill points are drawn from a seeded RNG
(somewhere in the first jobs), so a failure is reproducible."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

CONFIG = {
    "grn": {
        "run": ["tiny"],
        "datasets": {
            "tiny": {
                "source": "simulate",
                "simulate": {"n_trajectories": 2, "times": [0, 2, 3, 7, 9]},
                "n_genes": 10,
                "truth": "true_network",
            }
        },
        "methods": ["dense"],
        "priors": ["none"],
        "fit": {"hidden": 4, "epochs": 2, "knockouts": 0},
    },
    "multiomics": {"enabled": False},
}
PREPARE_LOG = "logs/grn/tiny/prepare.log"
RESULT = "results/grn/tiny/dense/none"
KILL_AT = random.Random(14)  # seconds after the first job starts


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return e


def _cli(*args: str, work: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "biostruct.cli", *args]
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=_env(), timeout=300)


def _alive_under(work: Path) -> list[int]:
    """Processes whose command line names the run directory (Snakemake and its jobs)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
            state = (d / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if str(work) in cmdline and state != "Z":
            pids.append(int(d.name))
    return pids


def _start(work: Path) -> subprocess.Popen:
    cfg = work / "config.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    cmd = [sys.executable, "-m", "biostruct.cli", "run", "grn", "--config", str(cfg)]
    cmd += ["--directory", str(work), "--cores", "1"]
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the test's own clean-up handle
    )
    deadline = time.monotonic() + 120
    while not (work / PREPARE_LOG).exists():  # the first job has started
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before it could be interrupted:\n{out[-2000:]}{err}")
        time.sleep(0.05)
    return proc


def _network(work: Path) -> np.ndarray:
    """The fitted network a run leaves (the fit is the step worth protecting)."""
    import anndata as ad

    return np.asarray(ad.read_h5ad(work / RESULT / "fitted.h5ad").varp["grn"])


def _run(work: Path, *more: str) -> subprocess.CompletedProcess:
    cfg = str(work / "config.yaml")
    return _cli("run", "grn", "--config", cfg, "--directory", str(work), *more, work=work)


# Up to the fit only: evaluation and reports add minutes on a busy machine and nothing here.
UNTIL_FIT = ("--", "--omit-from", "grn_evaluate")


@pytest.fixture()
def reference(tmp_path) -> np.ndarray:
    """The network of an uninterrupted run: the two steps called directly, in this process,
    with the arguments the rules build from CONFIG."""
    import anndata as ad

    from biostruct.cli import main

    prepared, fitted = str(tmp_path / "ref_prepared.h5ad"), str(tmp_path / "ref_fitted.h5ad")
    assert (
        main(
            ["grn", "prepare", "--source", "simulate", "--n-trajectories", "2"]
            + [
                "--times",
                "0",
                "2",
                "3",
                "7",
                "9",
                "--n-genes",
                "10",
                "--seed",
                "0",
                "--out",
                prepared,
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "grn",
                "fit",
                prepared,
                "--method",
                "dense",
                "--prior",
                "none",
                "--truth",
                "true_network",
            ]
            + [
                "--hidden",
                "4",
                "--epochs",
                "2",
                "--knockouts",
                "0",
                "--device",
                "cpu",
                "--seed",
                "0",
            ]
            + ["--model-dir", str(tmp_path / "ref_model"), "--out", fitted]
        )
        == 0
    )
    return np.asarray(ad.read_h5ad(fitted).varp["grn"])


def _wait_gone(work: Path, seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := _alive_under(work)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


@pytest.fixture()
def work(tmp_path):
    yield tmp_path
    for pid in _alive_under(tmp_path):  # never leave processes behind, whatever failed
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigterm_stops_snakemake_and_its_jobs(work, reference):
    proc = _start(work)
    time.sleep(KILL_AT.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGTERM)  # to biostruct only, as a scheduler or `kill` would
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in err
    assert _wait_gone(work) == [], "Snakemake or a job outlived biostruct"
    assert not (work / "results/grn/summary.csv").exists()  # the pipeline did not run on
    assert not (work / "results/grn/tiny/dense/none/fitted.h5ad").exists()
    # a rerun completes the fit, with the network of an uninterrupted run
    again = _run(work, *UNTIL_FIT)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "grn_fit" in again.stdout + again.stderr
    np.testing.assert_array_equal(_network(work), reference)


def test_sigkilled_run_leaves_a_lock_that_is_explained(work):
    proc = _start(work)
    time.sleep(KILL_AT.uniform(0.0, 1.5))
    kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert kids, "biostruct has no Snakemake child"
    os.killpg(int(kids[0]), signal.SIGKILL)  # Snakemake and its jobs die without clean-up
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL
    assert _wait_gone(work) == []
    assert any((work / ".snakemake" / "locks").iterdir())
    cfg = str(work / "config.yaml")
    # a real rerun (a dry run takes no lock) stops at the lock, before any job, and says why
    blocked = _cli("run", "grn", "--config", cfg, "--directory", str(work), work=work)
    assert blocked.returncode != 0
    assert "LockException" in blocked.stdout + blocked.stderr
    assert "holds a lock" in blocked.stderr and "--unlock" in blocked.stderr
    unlock = _cli("run", "grn", "--config", cfg, "--directory", str(work), "--unlock", work=work)
    assert unlock.returncode == 0, unlock.stdout[-2000:] + unlock.stderr[-2000:]
    again = _run(work, "-n")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "grn_fit" in again.stdout
