"""Workflow configs before any job runs: relative paths, schema, and the input files they name.

A config's relative paths (``path``, ``prior_file``, ``graph`` of a dataset) are resolved against
the folder of the config file, not the folder Snakemake runs in: the same config works from
any run directory. :func:`check_config` is what ``biostruct check --config FILE`` (and
``biostruct run`` before it starts Snakemake) runs: the schema with its defaults, then every
input file of the datasets to run, their obs keys, varp keys and the overlap of the prior with
the data's genes. Only the HDF5 metadata of the inputs is read (obs column names and types,
var names, varp keys), so checking a large file takes a moment, not a load.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from biostruct.errors import BiostructError, ConfigError, InputError, PriorError

__all__ = ["PATH_FIELDS", "resolve_config_paths", "schema_problems", "check_config"]

#: The dataset fields of each pipeline that name files; relative ones are resolved against the
#: config file's folder.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "grn": ("path", "prior_file"),
    "multiomics": ("path", "graph"),
}


def resolve_config_paths(cfg: dict[str, Any], base: str | Path) -> dict[str, Any]:
    """A copy of ``cfg`` whose relative dataset paths are joined to ``base``.

    Parameters
    ----------
    cfg
        A workflow config (``yaml.safe_load`` of the file).
    base
        The folder of the config file.

    Returns
    -------
    dict
        The config with every relative :data:`PATH_FIELDS` value made absolute (``~`` expanded);
        absolute paths and non-string values are left as they are.
    """
    out = copy.deepcopy(cfg)
    base = Path(base).expanduser().resolve()
    for part, fields in PATH_FIELDS.items():
        sec = out.get(part)
        datasets = sec.get("datasets") if isinstance(sec, dict) else None
        if not isinstance(datasets, dict):
            continue
        for spec in datasets.values():
            if not isinstance(spec, dict):
                continue
            for f in fields:
                value = spec.get(f)
                if isinstance(value, str) and value:
                    p = Path(value).expanduser()
                    spec[f] = str(p if p.is_absolute() else Path(os.path.normpath(base / p)))
    return out


def _schema_validator(schema: dict[str, Any]) -> Any:
    """A draft 2020-12 validator that also fills in the schema's defaults (as Snakemake's)."""
    from jsonschema import Draft202012Validator, validators

    base_props = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator: Any, properties: Any, instance: Any, schema: Any) -> Iterator:
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub:
                    instance.setdefault(name, copy.deepcopy(sub["default"]))
        yield from base_props(validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


def schema_problems(cfg: dict[str, Any], schema_file: str | Path) -> list[ConfigError]:
    """Check ``cfg`` against the workflow schema, filling in its defaults in place.

    Parameters
    ----------
    cfg
        The config; missing keys receive the schema's defaults.
    schema_file
        ``schemas/config.schema.yaml`` of the workflow.

    Returns
    -------
    list of ConfigError
        One per violation, named by its dotted key path (empty when the config is valid).
    """
    import yaml

    schema = yaml.safe_load(Path(schema_file).read_text())
    errors = sorted(_schema_validator(schema).iter_errors(cfg), key=lambda e: list(e.path))
    out = []
    for e in errors:
        where = ".".join(str(p) for p in e.path) or "(top level)"
        out.append(
            ConfigError(
                e.message,
                field=where,
                fix="see 'biostruct check --help' and "
                "the comments of config/template_own_data.yaml.",
            )
        )
    return out


# ---------------------------------------------------------------------------------- h5 metadata
class _H5Info:
    """obs columns (with whether each holds numbers), var names and varp keys of an h5 file."""

    def __init__(self, path: Path, field: str) -> None:
        import h5py

        if not h5py.is_hdf5(path):
            raise InputError(
                f"{path} is not an HDF5 file",
                field=field,
                fix="give a file written by anndata (.h5ad) or mudata (.h5mu).",
            )
        self.obs: dict[str, bool | None] = {}
        self.var_names: list[str] = []
        self.varp: list[str] = []
        self.mods: list[str] = []
        with h5py.File(path, "r") as f:
            groups = [f]
            if "mod" in f:
                self.mods = [str(m) for m in f["mod"]]
                groups += [f["mod"][m] for m in f["mod"]]
            for g in groups:
                if "obs" in g:
                    for col in _columns(g["obs"]):
                        self.obs.setdefault(col, _numeric(g["obs"][col]))
            if "mod" not in f and "var" in f:
                self.var_names = _index(f["var"])
                self.varp = [str(k) for k in f["varp"]] if "varp" in f else []


def _columns(group: Any) -> list[str]:
    order = group.attrs.get("column-order", [])
    return [str(c) for c in (order.tolist() if hasattr(order, "tolist") else order)]


def _as_str(values: Any) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def _index(group: Any) -> list[str]:
    name = group.attrs.get("_index", "_index")
    return _as_str(group[name][()]) if name in group else []


def _numeric(elem: Any) -> bool | None:
    """Whether an obs column holds numbers (text categories that all parse as numbers count);
    ``None`` when its layout is unknown."""
    import numpy as np

    values = elem["categories"] if hasattr(elem, "keys") and "categories" in elem else elem
    if not hasattr(values, "dtype"):
        return None
    if values.dtype.kind in "iufb":
        return True
    try:
        np.asarray(_as_str(values[()]), dtype=np.float64)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------------- checks
def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _file(spec: dict[str, Any], key: str, field: str, problems: list) -> Path | None:
    value = spec.get(key)
    if not value:
        return None
    p = Path(value)
    if not p.is_file():
        problems.append(
            InputError(
                f"{p} does not exist" + (" (it is a folder)" if p.is_dir() else ""),
                field=field,
                fix="check the path; relative paths are resolved against the config file's folder.",
            )
        )
        return None
    return p


def _open_input(spec: dict[str, Any], where: str, problems: list) -> tuple[Path, _H5Info] | None:
    """The dataset's ``path`` and its metadata, or ``None`` (with the problem recorded)."""
    path = _file(spec, "path", f"{where}.path", problems)
    if path is None:
        return None
    try:
        return path, _H5Info(path, f"{where}.path")
    except (BiostructError, OSError) as exc:
        problems.append(exc if isinstance(exc, BiostructError) else InputError(str(exc)))
        return None


def _obs_key(info: _H5Info, key: str | None, field: str, what: str, problems: list) -> None:
    if not key:
        return
    if key not in info.obs:
        cols = list(info.obs)
        problems.append(
            InputError(
                f"{key!r} is not an obs column of the input ({len(cols)} columns: "
                f"{', '.join(cols[:10]) or 'none'})",
                field=field,
                fix=_did_you_mean(key, cols) + f"set it to the obs column of {what}.",
            )
        )
    elif what.startswith("the (pseudo)time") and info.obs[key] is False:
        problems.append(
            InputError(
                f"obs[{key!r}] holds text, not numbers",
                field=field,
                fix="store the (pseudo)time as numbers, or name a numeric column.",
            )
        )


def _known_datasets() -> list[str]:
    """The names that ``source: dataset`` accepts (as ``biostruct grn/multiomics prepare``)."""
    from biostruct import datasets

    return sorted(datasets.list())


def _check_grn(name: str, spec: dict[str, Any], sec: dict[str, Any], problems: list) -> None:
    where = f"grn.datasets.{name}"
    if spec.get("source") == "dataset":
        _check_dataset_name(spec, where, problems)
        return
    if spec.get("source") != "file":
        return  # simulated: nothing on disk
    prior_file = _file(spec, "prior_file", f"{where}.prior_file", problems)
    opened = _open_input(spec, where, problems)
    if opened is None:
        return
    path, info = opened
    _obs_key(
        info,
        spec.get("time_key", "time"),
        f"{where}.time_key",
        "the (pseudo)time of each observation",
        problems,
    )
    _obs_key(
        info,
        spec.get("trajectory_key", "trajectory"),
        f"{where}.trajectory_key",
        "the series/lineage of each observation",
        problems,
    )
    if prior_file is not None:
        _check_prior_overlap(prior_file, info.var_names, spec, where, problems)
    usable = set(info.varp) | {"none"} | ({"prior"} if spec.get("prior_file") else set())
    for prior in spec.get("priors", sec.get("priors", ["prior"])):
        if prior not in usable:
            problems.append(
                InputError(
                    f"prior {prior!r} is neither a varp key of {path.name} (keys: "
                    f"{', '.join(info.varp) or 'none'}) nor 'prior' from a prior_file",
                    field=f"{where}.priors" if "priors" in spec else "grn.priors",
                    fix=_did_you_mean(prior, sorted(usable))
                    + "list varp keys, set prior_file (its key is 'prior'), or use 'none'.",
                )
            )
    truth = spec.get("truth")
    if truth and truth != "none" and truth not in info.varp:
        problems.append(
            InputError(
                f"truth {truth!r} is not a varp key of {path.name}",
                field=f"{where}.truth",
                fix=_did_you_mean(truth, info.varp) + "name a varp key, or leave truth out.",
            )
        )


def _check_prior_overlap(
    prior_file: Path, var_names: list[str], spec: dict[str, Any], where: str, problems: list
) -> None:
    import numpy as np

    from biostruct.datasets import read_prior

    missing = spec.get("missing", "raise")
    try:
        prior = read_prior(prior_file, var_names, missing=missing)
    except BiostructError as exc:
        fix = exc.fix or ""
        if missing != "drop" and isinstance(exc, PriorError):
            fix += f" Or set {where}.missing: drop to ignore prior genes absent from the data."
        problems.append(PriorError(_message(exc), field=f"{where}.prior_file", fix=fix.strip()))
        return
    if not np.count_nonzero(prior):
        problems.append(
            PriorError(
                f"{prior_file.name} has no edge between genes of the data",
                field=f"{where}.prior_file",
                fix="check that the prior uses the same gene names as var_names.",
            )
        )


def _message(exc: BiostructError) -> str:
    """The message of ``exc`` without its field prefix and its fix."""
    text = str(exc)
    if exc.fix and " Fix: " in text:
        text = text[: text.rfind(" Fix: ")]
    if exc.field and text.startswith(f"{exc.field}: "):
        text = text[len(exc.field) + 2 :]
    return text


def _check_dataset_name(spec: dict[str, Any], where: str, problems: list) -> None:
    known = _known_datasets()
    if spec.get("name") not in known:
        problems.append(
            ConfigError(
                f"unknown dataset {spec.get('name')!r}",
                field=f"{where}.name",
                fix=_did_you_mean(str(spec.get("name")), known) + f"known: {', '.join(known)}.",
            )
        )


def _check_mo(name: str, spec: dict[str, Any], sec: dict[str, Any], problems: list) -> None:
    where = f"multiomics.datasets.{name}"
    if spec.get("source") == "dataset":
        _check_dataset_name(spec, where, problems)
    graph = _file(spec, "graph", f"{where}.graph", problems)
    if graph is not None:
        from biostruct.multiomics.graph import parse_graph

        try:
            parse_graph(graph)
        except BiostructError as exc:
            problems.append(exc)
    if spec.get("source") != "file":
        return
    opened = _open_input(spec, where, problems)
    if opened is None:
        return
    path, info = opened
    if not info.mods:
        problems.append(
            InputError(
                f"{path.name} holds no modalities",
                field=f"{where}.path",
                fix="give a MuData (.h5mu) with one modality per omic.",
            )
        )
    _obs_key(info, spec.get("label_key"), f"{where}.label_key", "known cell labels", problems)
    _obs_key(info, spec.get("batch_key"), f"{where}.batch_key", "batches", problems)


def check_config(
    path: str | Path, *, allow_yte: bool = False, workflow: str | Path | None = None
) -> tuple[dict[str, Any], list[BiostructError]]:
    """Everything that can be checked about a workflow config before any job runs.

    Parameters
    ----------
    path
        The config YAML.
    allow_yte
        Accept a YTE template (see :func:`biostruct.cli.check_run_config`).
    workflow
        The workflow folder whose schema applies (default: see
        :func:`biostruct.cli.workflow_dir`).

    Returns
    -------
    tuple
        The config (defaults filled in, paths resolved against the file's folder) and the list
        of problems, each a :class:`~biostruct.errors.BiostructError` naming the config key and
        the fix; empty when the config is ready to run. A YTE template (with ``allow_yte``) is
        returned as read, without problems: only Snakemake renders it.
    """
    from biostruct.cli import check_run_config, workflow_dir

    path = Path(path)
    try:
        raw = check_run_config(path, allow_yte=allow_yte)
    except BiostructError as exc:
        return {}, [exc]
    if "__use_yte__" in raw:  # only Snakemake renders a template (allowed above): not checked
        return raw, []
    cfg = resolve_config_paths(raw, path.parent)
    problems: list[BiostructError] = list(
        schema_problems(cfg, workflow_dir(workflow) / "schemas" / "config.schema.yaml")
    )
    if problems:
        return cfg, problems
    for part, check in (("grn", _check_grn), ("multiomics", _check_mo)):
        sec = cfg[part]
        if not sec.get("enabled", True):
            continue
        for name in sec["run"]:
            check(name, sec["datasets"][name], sec, problems)
    return cfg, problems
