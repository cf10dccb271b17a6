# Helpers shared by the rules: the python that runs biostruct, target lists, resources.
import json
import re
import sys
from pathlib import Path

import yaml

import os


envvars:
    "PATH",


# Rules call the `biostruct` command. Put the bin folder of the Python running Snakemake first
# on PATH, so that its biostruct is found even when the environment is not activated (with
# --sdm conda, the rule's own environment comes first).
os.environ["PATH"] = os.pathsep.join(
    [os.path.dirname(sys.executable), os.environ.get("PATH", "")]
)
ENV = "../envs/biostruct.yaml"
# Optional, so not under envvars (which would require it): what envs/biostruct.yaml installs.
PIP_SPEC_VAR = "BIOSTRUCT_PIP_SPEC"


def biostruct_pip_spec():
    """What envs/biostruct.yaml pip-installs biostruct from (``${BIOSTRUCT_PIP_SPEC}`` there):
    BIOSTRUCT_PIP_SPEC if set, the source checkout holding this workflow, or what the biostruct
    running Snakemake was installed from (a wheel or a folder)."""
    from pathlib import Path

    if os.environ.get(PIP_SPEC_VAR):
        return os.environ[PIP_SPEC_VAR]
    root = Path(workflow.basedir).resolve().parents[1]  # <checkout>/biostruct/workflows
    if re.search(r'(?m)^name\s*=\s*"biostruct"', _read(root / "pyproject.toml")):
        return str(root)
    try:
        from biostruct.cli import pip_install_spec
    except ImportError:
        return None
    return pip_install_spec()


def _read(path):
    try:
        return path.read_text()
    except OSError:
        return ""


def uses_conda():
    try:
        from snakemake.settings.types import DeploymentMethod

        return DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    except (ImportError, AttributeError):
        return False


if uses_conda():
    _spec = biostruct_pip_spec()
    if not _spec:
        raise ValueError(
            "--sdm conda: envs/biostruct.yaml installs biostruct from this workflow's own source "
            "or wheel, and neither was found (biostruct is on no package registry). Fix: set "
            "BIOSTRUCT_PIP_SPEC to a biostruct wheel (.whl) or source folder, e.g. "
            "BIOSTRUCT_PIP_SPEC=$PWD/dist/biostruct-0.1.0-py3-none-any.whl."
        )
    os.environ[PIP_SPEC_VAR] = _spec  # pip expands ${BIOSTRUCT_PIP_SPEC} in the env file


# Names that become folders: letters, digits, '_', '-' and single dots; never '..', never a
# leading dot or dash, never a shell metacharacter. The wildcards are constrained to the same
# pattern (end of this file); check_config gives the readable error first.
SAFE_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]|\.(?!\.))*"


def check_config():
    """Names listed under 'run' must be defined under 'datasets' (the schema cannot say so), and
    every name that becomes part of a path must be a SAFE_NAME."""
    bad = []
    for part in ("grn", "multiomics"):
        known = config[part]["datasets"]
        for name in list(known) + list(config[part]["run"]):
            if not re.fullmatch(SAFE_NAME, str(name)):
                bad.append((f"{part}.datasets", name))
        for name in config[part]["run"]:
            if name not in known:
                raise ValueError(
                    f"config: {part}.run lists {name!r}, which is not defined under "
                    f"{part}.datasets (defined: {sorted(known)}). Fix: add it there or remove it "
                    "from the run list."
                )
    g = config["grn"]
    priors = list(g["priors"]) + [p for d in g["datasets"].values() for p in d.get("priors", [])]
    bad += [("grn.priors", p) for p in priors if not re.fullmatch(SAFE_NAME, str(p))]
    if bad:
        where, name = bad[0]
        raise ValueError(
            f"config: {where}: the name {name!r} cannot be used as a folder name. Fix: use "
            "letters, digits, '_', '-' and single dots only (no '..', no leading '.' or '-', "
            "no spaces, quotes or '$')."
        )


check_config()


def resolve_dataset_paths():
    """Relative dataset paths (path, prior_file, graph) point into the folder of the config
    file that set them (the last one when several do), not into the run directory. Values
    given with --config on the command line stay relative to the run directory."""
    fields = {"grn": ("path", "prior_file"), "multiomics": ("path", "graph")}
    bases = {}
    for f in workflow.configfiles:
        raw = yaml.safe_load(Path(f).read_text()) or {}
        for part, keys in fields.items():
            sec = raw.get(part) if isinstance(raw, dict) else None
            datasets = sec.get("datasets") if isinstance(sec, dict) else None
            for name, spec in (datasets or {}).items():
                for k in keys if isinstance(spec, dict) else ():
                    if k in spec:
                        bases[(part, name, k)] = Path(f).resolve().parent
    for (part, name, k), base in bases.items():
        spec = config[part]["datasets"].get(name) or {}
        value = spec.get(k)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            spec[k] = os.path.normpath(base / Path(value).expanduser())


resolve_dataset_paths()


def grn_runs():
    """(dataset, method, prior) of every GRN fit: the fan-out of the config."""
    g = config["grn"]
    if not g["enabled"]:
        return []
    runs = []
    for name in g["run"]:
        spec = g["datasets"][name]
        priors = spec.get("priors", g["priors"])
        for method in g["methods"]:
            for prior in priors:
                runs.append((name, method, prior))
    return runs


def all_grn_targets():
    runs = grn_runs()
    if not runs:
        return []
    out = [
        f"results/grn/{d}/{m}/{p}/{f}"
        for d, m, p in runs
        for f in ("result.h5ad", "edges.csv", "report.html")
    ]
    return out + ["results/grn/summary.csv"]


def all_multiomics_targets():
    mo = config["multiomics"]
    if not mo["enabled"]:
        return []
    return [
        f"results/multiomics/{d}/{f}"
        for d in mo["run"]
        for f in ("analysed.h5mu", "report.html")
    ]


def gpu_count():
    """GPUs a training job asks for: only when the config asks for CUDA."""
    return config["gpus_per_job"] if config["device"] == "cuda" else 0


def train_resources():
    """Resources of a training job, chosen by the config's device.

    device cuda: ``gpu`` (or ``gres``), ``gpu_manufacturer``, ``cpus_per_gpu``, GPU memory and
    run time, and the GPU partition when one is set. Otherwise no GPU key at all (executors such
    as Kubernetes react to a key's presence), CPU memory and run time, and the CPU partition
    when one is set. Partitions are never set in the SLURM profile's set-resources, which would
    apply them whatever the device.
    """
    c = config["cluster"]
    if config["device"] == "cuda":
        res = {
            "gpu_manufacturer": "nvidia",
            "cpus_per_gpu": c["cpus_per_gpu"],
            "mem_mb": c["gpu_mem_mb"],
            "runtime": c["gpu_runtime_min"],
        }
        if c["gres"]:
            res["gres"] = c["gres"]
        else:
            res["gpu"] = config["gpus_per_job"]
            if c["gpu_model"]:
                res["gpu_model"] = c["gpu_model"]
        if c["gpu_partition"]:
            res["slurm_partition"] = c["gpu_partition"]
    else:
        res = {"mem_mb": config["mem_mb"], "runtime": config["runtime_min"]}
        if c["cpu_partition"]:
            res["slurm_partition"] = c["cpu_partition"]
    return res


def grn_dataset(wildcards):
    return config["grn"]["datasets"][wildcards.dataset]


def mo_dataset(wildcards):
    return config["multiomics"]["datasets"][wildcards.dataset]


def opt(flag, value):
    """A command-line option as a list of arguments, or [] when the value is unset.

    Rules pass these lists as ``{params.args:q}``: Snakemake quotes every element on its own,
    so no config value or file name ever reaches the shell unquoted.
    """
    if value is None or value == "" or value is False:
        return []
    if isinstance(value, (list, tuple)):
        return [flag, *(str(v) for v in value)]
    return [flag, str(value)]


def args(*options):
    """The concatenation of ``opt(...)`` lists and single flags."""
    out = []
    for o in options:
        out.extend([o] if isinstance(o, str) else o)
    return out


def grn_prepare_args(wildcards):
    d = grn_dataset(wildcards)
    sim = d.get("simulate", {})
    return args(
        opt("--source", d["source"]),
        opt("--name", d.get("name")),
        opt("--path", d.get("path")),
        opt("--prior-file", d.get("prior_file")),
        opt("--prior-missing", d.get("missing") if d.get("prior_file") else None),
        opt("--n-trajectories", sim.get("n_trajectories")),
        opt("--times", sim.get("times")),
        opt("--noise-sd", sim.get("noise_sd")),
        opt("--n-genes", d.get("n_genes")),
        opt("--time-key", d.get("time_key", "time")),
        opt("--trajectory-key", d.get("trajectory_key", "trajectory")),
        opt("--seed", config["seed"]),
    )


def grn_fit_args(wildcards):
    d = grn_dataset(wildcards)
    f = config["grn"]["fit"]
    return args(
        opt("--method", wildcards.method),
        opt("--prior", wildcards.prior),
        opt("--truth", d.get("truth", "none")),
        opt("--hidden", f["hidden"]),
        opt("--epochs", f["epochs"]),
        opt("--knockouts", f["knockouts"]),
        opt("--time-key", d.get("time_key", "time")),
        opt("--trajectory-key", d.get("trajectory_key", "trajectory")),
        opt("--train-kwargs", json.dumps(f["train_kwargs"]) if f["train_kwargs"] else ""),
        opt("--device", config["device"]),
        opt("--seed", config["seed"]),
    )


def grn_evaluate_args(wildcards):
    return args(
        opt("--truth", grn_dataset(wildcards).get("truth", "none")),
        opt("--top", config["grn"]["evaluate"]["top_edges"]),
        opt("--label", f"{wildcards.dataset}/{wildcards.method}/{wildcards.prior}"),
    )


def grn_report_args(wildcards):
    title = f"GRN: {wildcards.dataset}, {wildcards.method}, {wildcards.prior}"
    return args(
        opt("--truth", grn_dataset(wildcards).get("truth", "none")),
        opt("--title", title),
    )


def mo_prepare_args(wildcards):
    d = mo_dataset(wildcards)
    return args(
        opt("--source", d["source"]),
        opt("--name", d.get("name")),
        opt("--path", d.get("path")),
        opt("--n-cells", d.get("n_cells")),
        opt("--max-features", d.get("max_features")),
        opt("--label-key", d.get("label_key")),
        opt("--seed", config["seed"]),
    )


def mo_fit_args(wildcards):
    d = mo_dataset(wildcards)
    f = config["multiomics"]["fit"]
    return args(
        opt("--graph", d.get("graph")),
        opt("--n-latent", f["n_latent"]),
        opt("--max-epochs", f["max_epochs"]),
        opt("--batch-key", d.get("batch_key")),
        opt("--train-kwargs", json.dumps(f["train_kwargs"]) if f["train_kwargs"] else ""),
        opt("--device", config["device"]),
        opt("--seed", config["seed"]),
    )


def mo_analyse_args(wildcards):
    a = config["multiomics"]["analyse"]
    return args(
        [] if a["umap"] else ["--no-umap"],
        opt("--max-groups", a["max_groups"]),
        opt("--min-cells", a["min_cells"]),
        opt("--de-cells", a["de_cells"]),
        opt("--de-samples", a["de_samples"]),
        opt("--scanpy-umap", a["scanpy_umap"]),
        opt("--device", config["device"]),
        opt("--seed", config["seed"]),
    )


def mo_report_args(wildcards):
    return args(
        opt("--label-key", mo_dataset(wildcards).get("label_key")),
        opt("--title", f"Multi-omics: {wildcards.dataset}"),
    )


def write_text_atomic(path, text):
    """Write text to a temporary sibling, then rename (no half-written outputs)."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".tmp.", dir=os.path.dirname(path) or ".")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


wildcard_constraints:
    dataset=SAFE_NAME,
    method="[a-z0-9_]+",
    prior=SAFE_NAME,
