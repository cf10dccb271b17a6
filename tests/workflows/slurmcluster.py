"""A one-node SLURM cluster on this machine for tests: Debian's munge, slurmctld and slurmd,
started in the foreground (-D) as child processes and stopped by their pids.

The config goes to Slurm's default path (/etc/slurm/slurm.conf): the SLURM plugin's job step
clears SLURM_CONF, so a config elsewhere is not found inside the jobs. The file is removed again
on stop (a leftover config would make every ``scontrol`` wait for a controller that is gone).
Two partitions: ``cpu`` (the default) and ``gpu`` (same node, no GPUs: only its name tells where
a job went). No accounting (no slurmdbd), like the clusters the profile's squeue status is for.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

SLURM_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "srun")


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


def _mem_mb() -> int:
    with open("/proc/meminfo") as fh:
        kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    return max(1000, int(kb / 1024 * 0.8))


@dataclass
class Cluster:
    root: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    node: str = ""
    munge_dir: Path | None = None  # outside root: pytest's tmp folders are closed to 'munge'

    def conf_text(self) -> str:
        r = self.root
        return f"""\
ClusterName=biostructtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/slurmctld.log
SlurmdLogFile={r}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=300
SlurmdTimeout=60
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory={_mem_mb()} State=UNKNOWN
PartitionName=cpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={self.node} MaxTime=INFINITE State=UP
"""

    def start(self, timeout: float = 60.0) -> None:
        if SLURM_CONF.exists():
            if not SLURM_CONF.read_text().startswith("ClusterName=biostructtest\n"):
                raise RuntimeError(f"{SLURM_CONF} exists: not starting a test cluster over it")
            SLURM_CONF.unlink()  # left by a test run that was killed
        self.node = socket.gethostname().split(".")[0]
        for d in ("state", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.munge_dir = Path(tempfile.mkdtemp(prefix="biostruct-munge-"))
        self.munge_dir.chmod(0o755)
        try:
            self._start_munge()
            SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
            SLURM_CONF.write_text(self.conf_text())
            self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
            self._spawn("slurmd", ["slurmd", "-D"])
            self._wait_idle(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_munge(self) -> None:
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True)
            shutil.chown(key, "munge", "munge")
            key.chmod(0o400)
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET.parent, "munge", "munge")
        shutil.chown(self.munge_dir, "munge", "munge")
        if MUNGE_SOCKET.exists():  # a munged that is already running serves us as well
            probe = subprocess.run(["munge", "-n"], capture_output=True)
            if probe.returncode == 0:
                return
        cmd = ["munged", "-F"]
        cmd += ["--pid-file", str(self.munge_dir / "munged.pid")]
        cmd += ["--log-file", str(self.munge_dir / "munged.log")]
        cmd += ["--seed-file", str(self.munge_dir / "munged.seed")]
        self._spawn("munged", cmd, user="munge")
        for _ in range(100):
            if MUNGE_SOCKET.exists():
                return
            time.sleep(0.1)
        log = self.munge_dir / "munged.log"
        raise RuntimeError(f"munged did not start: {log.read_text() if log.exists() else ''}")

    def _spawn(self, name: str, cmd: list[str], user: str | None = None) -> None:
        with open(self.root / f"{name}.out", "wb") as out:
            self.procs[name] = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True
            )

    def _wait_idle(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}): {self.diagnostics()}")
            q = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True)
            states = q.stdout.split()
            if states and all(s.rstrip("*") in ("idle", "mixed") for s in states):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node did not become idle: {self.diagnostics()}")

    def log(self, rel: str) -> str:
        p = self.root / rel
        return p.read_text(errors="replace")[-2000:] if p.exists() else f"({rel} missing)"

    def diagnostics(self) -> str:
        parts = [f"--- {n}\n{self.log(n)}" for n in ("slurmctld.log", "slurmd.log")]
        parts += [f"--- {n}.out\n{self.log(n + '.out')}" for n in self.procs]
        return "\n".join(parts)

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still holds (finished ones for MinJobAge): id, partition,
        state, comment (the plugin's ``rule_<name>_wildcards_...``)."""
        q = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%i|%P|%T|%k"],
            capture_output=True,
            text=True,
            check=True,
        )
        keys = ("id", "partition", "state", "comment")
        return [dict(zip(keys, line.split("|"))) for line in q.stdout.splitlines() if line]

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.pop(name, None)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if SLURM_CONF.exists() and SLURM_CONF.read_text() == self.conf_text():
            SLURM_CONF.unlink()
        if self.munge_dir is not None:
            shutil.rmtree(self.munge_dir, ignore_errors=True)
            self.munge_dir = None
