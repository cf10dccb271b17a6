"""`biostruct run` under signals: SIGTERM reaches Snakemake and its jobs; a SIGKILLed run leaves
a lock that the next run explains, and `--unlock` clears it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_sigterm_stops_snakemake_and_its_jobs(work):
    proc = _start(work)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)  # to biostruct only, as a scheduler or `kill` would
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "stopped by SIGTERM" in err
    assert _wait_gone(work) == [], "Snakemake or a job outlived biostruct"
    assert not (work / "results/grn/summary.csv").exists()  # the pipeline did not run on
    assert not (work / "results/grn/tiny/dense/none/fitted.h5ad").exists()
    # a rerun plans the remaining jobs; nothing blocks it
    dry = _cli(
        "run",
        "grn",
        "--config",
        str(work / "config.yaml"),
        "--directory",
        str(work),
        "-n",
        work=work,
    )
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    assert "grn_fit" in dry.stdout


def test_sigkilled_run_leaves_a_lock_that_is_explained(work):
    proc = _start(work)
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
    again = _cli("run", "grn", "--config", cfg, "--directory", str(work), "-n", work=work)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "grn_prepare" in again.stdout or "grn_fit" in again.stdout
