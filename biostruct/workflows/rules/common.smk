# Helpers shared by the rules: the python that runs biostruct, target lists, resources.
import json
import re
import sys

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
