"""The ``biostruct`` command: pipeline steps, datasets, reports, and Snakemake runs.

Every workflow rule calls one subcommand here, so the Snakefile holds wiring only. Heavy imports
(torch, scanpy, snakemake) happen inside the subcommands, which keeps ``biostruct --help`` fast.
Every output is written to a temporary name and renamed at the end, so an interrupted step never
leaves a file that looks complete.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from biostruct.errors import BiostructError, ConfigError, DataFormatError, InputError

__all__ = ["main", "build_parser", "workflow_dir", "packaged_workflow_dir", "pip_install_spec"]

_EPILOG = """\
Typical use:
  biostruct run all --cores 2                 both pipelines on the embedded demo data
  biostruct check --config my.yaml            check your config and the files it names
  biostruct run grn --config my.yaml -n       dry run of the GRN pipeline on your config
  biostruct datasets list                     the datasets biostruct knows
  biostruct grn fit prepared.h5ad --method dash --prior prior_noise_0.05 --out fitted.h5ad

Each pipeline step is also a subcommand (see 'biostruct grn --help', 'biostruct multiomics
--help'); the Snakemake workflow shipped with biostruct chains them ('biostruct workflow init
DIR' copies it for editing).
"""


# ---------------------------------------------------------------------------------- file helpers
def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _publish(tmp: Path, path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


def write_atomic(path: str | Path, writer: Callable[[Path], Any], suffix: str = "") -> Path:
    """Call ``writer(tmp)`` on a temporary sibling of ``path``, then rename it to ``path``."""
    path = Path(path)
    tmp = _tmp_sibling(path, suffix)
    try:
        writer(tmp)
        _publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_h5(obj: Any, path: str | Path) -> Path:
    """Write AnnData (.h5ad) or MuData (.h5mu) atomically."""
    suffix = Path(path).suffix
    if suffix == ".h5mu":
        return write_atomic(path, lambda p: obj.write(str(p)), ".h5mu")
    return write_atomic(path, lambda p: obj.write_h5ad(p), ".h5ad")


def _write_table(df: Any, path: str | Path, index: bool = False) -> Path:
    """Write a DataFrame as .csv (or .parquet when the name says so) atomically."""
    if str(path).endswith(".parquet"):
        return write_atomic(path, lambda p: df.to_parquet(p, index=index), ".parquet")
    return write_atomic(path, lambda p: df.to_csv(p, index=index), ".csv")


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN and infinities replaced by ``None`` (JSON ``null``) and numpy values
    turned into Python ones, so that strict JSON parsers accept the file."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _write_json(obj: Any, path: str | Path) -> Path:
    """Strict JSON (``null`` for NaN or infinite values), written atomically."""
    text = json.dumps(strict_json(obj), indent=2, default=_json_default, allow_nan=False)
    return write_atomic(path, lambda p: p.write_text(text + "\n"))


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _save_dir_atomic(path: str | Path, saver: Callable[[Path], Any]) -> Path:
    """``saver(tmpdir)`` fills a temporary folder that then replaces ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        saver(tmp / "model")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp / "model", 0o777 & ~umask)  # mkdtemp folders are 0700
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp / "model", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _h5_safe(obj: Any) -> Any:
    """Nested values that h5ad/h5mu can store: lists of dicts become dicts (keyed by their
    ``name`` when they have one), None becomes "none", lists of strings become arrays."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _h5_safe(v) for k, v in obj.items()}
    if obj is None:
        return "none"
    if isinstance(obj, list | tuple):
        if obj and all(isinstance(v, dict) for v in obj):
            names = [v.get("name") for v in obj]
            if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
                return {n: _h5_safe(v) for n, v in zip(names, obj)}
            return {str(i): _h5_safe(v) for i, v in enumerate(obj)}
        if all(isinstance(v, str) for v in obj):
            return np.array(obj, dtype=object) if obj else np.array([], dtype=str)
        if all(isinstance(v, int | float | bool | np.number) for v in obj):
            return np.asarray(obj)
        return {str(i): _h5_safe(v) for i, v in enumerate(obj)}
    return obj


def _timed_fit(
    fit: Callable[..., Any], args: argparse.Namespace, /, *data: Any, **options: Any
) -> tuple[Any, float]:
    """Call ``fit(*data, **options)`` plus the ``--train-kwargs`` JSON options.

    Returns
    -------
    tuple
        The fitted model and the seconds the fit took.
    """
    extra = _train_kwargs(args.train_kwargs, fit, options, len(data))
    t0 = time.perf_counter()
    model = fit(*data, **options, **extra)
    return model, time.perf_counter() - t0


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    """``"did you mean 'x'? "`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _grn_train_keywords() -> set[str]:
    """Keywords that ``build_configs`` accepts (training, schedule, pruning, solver)."""
    import inspect
    from dataclasses import fields

    from biostruct.grn.dash import PruneSchedule
    from biostruct.grn.model import GRNModel
    from biostruct.grn.train import TrainConfig

    train = {f.name for f in fields(TrainConfig)} - {"solver", "epochs"}
    schedule = {f.name for f in fields(PruneSchedule)}
    solver = {"solver", "rtol", "atol", "step_size", "adjoint", "max_steps"}
    fit = {  # keywords of GRNModel.train itself (resume, max_seconds, ...)
        k
        for k, p in inspect.signature(GRNModel.train).parameters.items()
        if p.kind is p.KEYWORD_ONLY and k not in ("epochs", "callback")
    }
    pruning = {"lam_ppi", "lam_motif", "reset_lr", "scores", "velocity"}
    return train | schedule | solver | fit | pruning


def _train_kwargs(
    text: str, fit: Callable[..., Any], options: dict[str, Any], n_data: int = 0
) -> dict[str, Any]:
    """The ``--train-kwargs`` JSON object, checked: valid JSON, a mapping, no keyword that a
    command-line option already sets, and (for the GRN fit) only known training keywords."""
    if not text:
        return {}
    field = "--train-kwargs"
    example = "e.g. --train-kwargs '{\"lr\": 0.005}' (double quotes inside single quotes)."
    try:
        extra = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{text!r} is not valid JSON ({exc.msg} at character {exc.pos})",
            field=field,
            fix=example,
        ) from None
    if not isinstance(extra, dict):
        raise ConfigError(
            f"expected a JSON object, got {type(extra).__name__}", field=field, fix=example
        )
    import inspect

    params = inspect.signature(fit).parameters
    taken = set(options) | set(list(params)[:n_data])
    for key in extra:
        if key in taken:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{key!r} is set by a command-line option",
                field=f"{field}.{key}",
                fix=f"use {flag} (or the config's fit section) instead.",
            )
    if getattr(fit, "__name__", "") == "infer_grn":
        named = {k for k, p in params.items() if p.kind is p.KEYWORD_ONLY}
        known = (named - taken) | _grn_train_keywords()
        for key in extra:
            if key not in known:
                raise ConfigError(
                    f"unknown training option {key!r}",
                    field=f"{field}.{key}",
                    fix=_did_you_mean(key, sorted(known))
                    + f"accepted: {', '.join(sorted(known))}.",
                )
    return extra


def _finish_fit(
    data: Any, uns: Any, model: Any, args: argparse.Namespace, runtime: float, label: str
) -> None:
    """Store ``uns`` (plus run time and device) under ``args.key``, save the model, write the file.

    The model directory is written before the result file, so a result file on disk always has
    its model next to it.
    """
    uns["runtime_s"] = float(runtime)
    uns["device"] = str(getattr(model, "device", args.device))
    data.uns[args.key] = uns
    if args.model_dir:
        _save_dir_atomic(args.model_dir, lambda p: model.save(p))
    _write_h5(data, args.out)
    print(f"fitted {label} in {runtime:.1f} s -> {args.out}")


def _need_file(path: str | Path, field: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist", field=field, fix="check the path.")
    return p


def _read_h5(path: str | Path, field: str = "input") -> Any:
    """Read an .h5ad / .h5mu; a damaged or foreign file is a DataFormatError, not a traceback."""
    p = _need_file(path, field)
    if p.is_dir():
        raise InputError(f"{p} is a folder", field=field, fix="give an .h5ad or .h5mu file.")
    if p.suffix in (".h5mu", ".h5ad"):
        kind = "MuData (.h5mu)" if p.suffix == ".h5mu" else "AnnData (.h5ad)"
        import h5py

        if not h5py.is_hdf5(p):
            with open(p, "rb") as fh:
                head = fh.read(16)
            raise DataFormatError(
                f"{p} is not an HDF5 file (it starts with {head!r})",
                field=field,
                fix=f"give a {kind} file written by anndata/mudata; a renamed text or CSV file "
                "does not work.",
            )
        try:
            if p.suffix == ".h5mu":
                import mudata as md

                md.set_options(pull_on_update=False)
                return md.read_h5mu(p)
            import anndata as ad

            return ad.read_h5ad(p)
        except BiostructError:
            raise
        except Exception as exc:  # h5py/anndata errors on truncated or foreign files
            msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise DataFormatError(
                f"{p} cannot be read as {kind} ({type(exc).__name__}: {msg})",
                field=field,
                fix="the file is truncated or was not written by anndata/mudata: write or "
                "download it again.",
            ) from None
    raise InputError(
        f"{p} is neither .h5ad nor .h5mu", field=field, fix="give an AnnData .h5ad or MuData .h5mu."
    )


def _load_config(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    import yaml

    p = _need_file(path, "--config")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"not valid YAML ({exc})", field=str(p), fix="fix the YAML syntax."
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(
            "the top level must be a mapping", field=str(p), fix="use key: value lines."
        )
    return data


# ---------------------------------------------------------------------------------- datasets
def cmd_datasets_list(args: argparse.Namespace) -> int:
    from biostruct import datasets

    try:
        cat = datasets.catalog()
    except AttributeError:  # pragma: no cover - older datasets module
        cat = None
    if cat is not None and len(cat):
        print(_fit_table(cat, shutil.get_terminal_size((100, 24)).columns))
    else:
        for name in datasets.list():
            print(name)
    return 0


def _fit_table(table: Any, width: int) -> str:
    """``table`` as text no wider than ``width``: the last column is cut with an ellipsis (the
    license to its first words), so that lines do not wrap in the terminal."""
    df = table.copy()
    if "license" in df:
        df["license"] = [str(v).split(" (")[0].split(";")[0] for v in df["license"]]
    last = df.columns[-1]
    head = df.drop(columns=[last]).to_string().splitlines()
    room = max(20, width - max(len(line) for line in head) - 2)
    df[last] = [v if len(str(v)) <= room else str(v)[: room - 1] + "\u2026" for v in df[last]]
    return df.to_string()


def cmd_datasets_fetch(args: argparse.Namespace) -> int:
    from biostruct import datasets
    from biostruct.datasets.manifests import manifests

    known = sorted({*datasets.list(), *manifests()})
    if args.name not in known:
        raise ConfigError(
            f"unknown dataset {args.name!r}",
            field="name",
            fix=_did_you_mean(args.name, known) + f"known: {', '.join(known)}.",
        )
    paths = datasets.fetch(args.name)
    items = paths.items() if isinstance(paths, dict) else enumerate(paths)
    for _, p in items:
        print(p)
    return 0


def _dataset_or_file(args: argparse.Namespace, suffix: str) -> Any:
    """The named dataset (``--source dataset --name``), else the file ``--path``.

    Parameters
    ----------
    args
        Parsed arguments with ``source``, ``name`` and ``path``.
    suffix
        The file type the step expects (``".h5ad"`` or ``".h5mu"``), for the error message.
    """
    if args.source == "dataset":
        from biostruct import datasets

        if not args.name:
            raise ConfigError(
                "--name is required with --source dataset",
                field="--name",
                fix="name a dataset from 'biostruct datasets list'.",
            )
        known = list(datasets.list())
        if args.name not in known:
            raise ConfigError(
                f"unknown dataset {args.name!r}",
                field="--name",
                fix=_did_you_mean(args.name, known) + f"known: {', '.join(known)}.",
            )
        return datasets.load(args.name)
    if not args.path:
        raise ConfigError(
            "--path is required with --source file", field="--path", fix=f"give your {suffix} file."
        )
    return _read_h5(args.path, "--path")


# ---------------------------------------------------------------------------------- GRN steps
def _grn_source(args: argparse.Namespace) -> Any:
    from biostruct import datasets

    if args.source == "simulate":
        times = tuple(float(t) for t in args.times) if args.times else (0.0, 2.0, 3.0, 7.0, 9.0)
        return datasets.simulate_sim690(
            n_trajectories=args.n_trajectories, times=times, noise_sd=args.noise_sd, seed=args.seed
        )
    if args.source in ("dataset", "file"):
        return _dataset_or_file(args, ".h5ad")
    raise ConfigError(
        f"unknown source {args.source!r}", field="--source", fix="use simulate, dataset or file."
    )  # pragma: no cover


def cmd_grn_prepare(args: argparse.Namespace) -> int:
    """Load or simulate the AnnData, attach a prior file, optionally keep the top-variance genes."""
    import numpy as np

    adata = _grn_source(args)
    for key in (args.time_key, args.trajectory_key):
        if key not in adata.obs:
            raise InputError(
                f"column {key!r} not in obs (columns: {list(adata.obs.columns)[:10]})",
                field=f"obs[{key!r}]",
                fix="set time_key / trajectory_key in the config to your obs columns.",
            )
    if args.prior_file:
        from biostruct.datasets import read_prior

        prior = read_prior(
            _need_file(args.prior_file, "--prior-file"),
            adata.var_names,
            missing=args.prior_missing,
        )
        adata.varp["prior"] = np.asarray(
            getattr(prior, "toarray", lambda: prior)(), dtype=np.float32
        )
    if args.n_genes and args.n_genes < adata.n_vars:
        X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
        keep = np.sort(np.argsort(-X.var(axis=0), kind="stable")[: args.n_genes])
        adata = adata[:, keep].copy()
    adata.uns["biostruct_prepare"] = {
        "source": args.source,
        "name": args.name or "",
        "path": str(args.path or ""),
        "seed": args.seed,
    }
    _write_h5(adata, args.out)
    print(f"prepared {adata.n_obs} observations x {adata.n_vars} genes -> {args.out}")
    return 0


def cmd_grn_fit(args: argparse.Namespace) -> int:
    """Fit one method; write the fitted AnnData, the model folder, predictions and knockouts."""
    import numpy as np
    import pandas as pd

    from biostruct.grn.api import infer_grn
    from biostruct.grn.methods import METHODS

    if args.method not in METHODS:
        raise ConfigError(
            f"unknown method {args.method!r}",
            field="--method",
            fix=_did_you_mean(args.method, list(METHODS)) + f"use one of {', '.join(METHODS)}.",
        )
    adata = _read_h5(args.input)
    prior = None if args.prior in (None, "", "none") else args.prior
    truth = None if args.truth in (None, "", "none") else args.truth
    varp = [str(k) for k in adata.varp.keys()]
    if prior is not None and prior not in adata.varp and not Path(prior).is_file():
        raise InputError(
            f"{prior!r} is neither a key of varp (keys: {varp or 'none'}) nor a file",
            field="--prior",
            fix=_did_you_mean(prior, varp)
            + "pass a varp key, a prior CSV file, or 'none' for methods without a prior.",
        )
    if args.key in varp and args.key == prior:
        raise ConfigError(
            f"the result key {args.key!r} is the prior's key: the fit would overwrite its input",
            field="--key",
            fix="choose another --key.",
        )
    if truth is not None and truth not in adata.varp:
        if args.truth != "true_network":  # asked for explicitly: say that it is not there
            print(
                f"biostruct: note: --truth {truth!r} is not a varp key ({varp}); edge metrics "
                "are skipped.",
                file=sys.stderr,
            )
        truth = None  # no ground truth for this data set: metrics are skipped
    model, runtime = _timed_fit(
        infer_grn,
        args,
        adata,
        prior,
        time_key=args.time_key,
        trajectory_key=args.trajectory_key,
        method=args.method,
        key_added=args.key,
        hidden=args.hidden,
        epochs=args.epochs,
        device=args.device,
        seed=args.seed,
        truth=truth,
        predict=True,
        **_grn_progress(args),
    )
    _close_bar(args)
    if args.knockouts > 0:
        W = np.abs(np.asarray(adata.varp[args.key]))
        np.fill_diagonal(W, 0.0)
        regs = np.argsort(-W.sum(axis=1), kind="stable")[: args.knockouts]
        frames = []
        for g in regs:
            name = str(adata.var_names[g])
            eff = model.knockout(name)
            frames.append(
                pd.DataFrame(
                    {
                        "knocked_out": name,
                        "target": eff.index.astype(str),
                        "effect": eff["delta"].to_numpy(dtype=float),
                    }
                )
            )
        adata.uns[args.key]["knockout"] = pd.concat(frames, ignore_index=True)
    _finish_fit(adata, adata.uns[args.key], model, args, runtime, args.method)
    return 0


def _show_progress(args: argparse.Namespace) -> bool:
    """``--progress`` / ``--no-progress``; by default on when stderr is a terminal."""
    flag = getattr(args, "progress", None)
    return bool(sys.stderr.isatty()) if flag is None else bool(flag)


def _grn_progress(args: argparse.Namespace) -> dict[str, Any]:
    """``callback=`` of a tqdm bar over the GRN training epochs, or ``{}`` without a bar."""
    if not _show_progress(args) or args.method == "velocity":
        return {}
    from tqdm.auto import tqdm

    bar = tqdm(total=args.epochs, desc=f"grn fit [{args.method}]", unit="epoch", leave=True)
    args._bar = bar

    def update(row: dict[str, Any]) -> None:
        bar.update(1)
        bar.set_postfix(val_loss=f"{row['val_loss']:.4g}", refresh=False)

    return {"callback": update}


def _close_bar(args: argparse.Namespace) -> None:
    bar = getattr(args, "_bar", None)
    if bar is not None:
        bar.close()


def cmd_grn_evaluate(args: argparse.Namespace) -> int:
    """Extract the edge list and, where a ground truth exists, the edge metrics."""
    import numpy as np

    from biostruct.report.grn import edge_table

    adata = _read_h5(args.input)
    if args.key not in adata.varp:
        raise InputError(
            f"no network under varp[{args.key!r}]",
            field="--key",
            fix=_did_you_mean(args.key, [str(k) for k in adata.varp.keys()])
            + "run 'biostruct grn fit' first or pass its --key.",
        )
    W = np.asarray(getattr(adata.varp[args.key], "toarray", lambda: adata.varp[args.key])())
    truth = adata.varp[args.truth] if args.truth and args.truth in adata.varp else None
    T = None if truth is None else np.asarray(getattr(truth, "toarray", lambda: truth)())
    edges = edge_table(W, list(map(str, adata.var_names)), T)
    _write_table(edges.head(args.top) if args.top else edges, args.edges)
    info = adata.uns.get(args.key, {})
    metrics: dict[str, Any] = {
        "method": str(info.get("params", {}).get("method", "")),
        "n_genes": int(adata.n_vars),
        "n_edges": int(len(edges)),
        "runtime_s": float(info.get("runtime_s", np.nan)),
    }
    if "test_mse" in info:
        metrics["test_mse"] = float(info["test_mse"])
    if T is not None:
        from biostruct.grn import metrics as gm

        full = gm.edge_metrics(W, T)
        metrics.update({k: v for k, v in full.items() if isinstance(v, int | float | np.number)})
        adata.uns[args.key]["metrics"] = {
            k: float(v) for k, v in full.items() if isinstance(v, int | float | np.number)
        }
    metrics["run"] = args.label or ""
    _write_json(metrics, args.metrics)
    _write_h5(adata, args.out)
    summary = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k in ("auroc", "ap"))
    print(f"{len(edges)} edges{'; ' + summary if summary else ''} -> {args.out}")
    return 0


def cmd_grn_summarise(args: argparse.Namespace) -> int:
    """Collect the metrics JSON files of a fan-out into one table."""
    import pandas as pd

    rows = [json.loads(_need_file(p, "metrics").read_text()) for p in args.metrics]
    _write_table(pd.DataFrame(rows), args.out)
    print(f"{len(rows)} runs -> {args.out}")
    return 0


# ---------------------------------------------------------------------------------- multi-omics
def cmd_mo_prepare(args: argparse.Namespace) -> int:
    """Load a MuData (dataset or file), optionally subsample cells and keep top features."""
    import numpy as np

    mdata = _dataset_or_file(args, ".h5mu")
    if not hasattr(mdata, "mod"):
        raise InputError(
            "the input is not a MuData",
            field="--path",
            fix="give a .h5mu with one modality per omic.",
        )
    import mudata as md

    md.set_options(pull_on_update=False)
    if args.n_cells and args.n_cells < mdata.n_obs:
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(mdata.n_obs, size=args.n_cells, replace=False))
        mdata = mdata[mdata.obs_names[keep]].copy()
    if args.max_features:
        mods = {}
        for name, a in mdata.mod.items():
            if a.n_vars > args.max_features:
                X = a.X
                s = np.asarray(X.sum(axis=0)).ravel()
                keep = np.sort(np.argsort(-s, kind="stable")[: args.max_features])
                a = a[:, keep].copy()
            mods[name] = a
        obs = mdata.obs.copy()
        mdata = md.MuData(mods)
        mdata.obs = obs.loc[mdata.obs_names]
    from biostruct.multiomics.data import filter_empty

    # the model needs every cell and feature to have counts (subsetting can also leave empties)
    obs = mdata.obs.copy()
    mdata = filter_empty(mdata)
    for col in obs.columns:
        if col not in mdata.obs:
            mdata.obs[col] = obs[col].reindex(mdata.obs_names)
    if args.label_key and args.label_key not in mdata.obs:
        for a in mdata.mod.values():
            if args.label_key in a.obs:
                mdata.obs[args.label_key] = a.obs[args.label_key].reindex(mdata.obs_names)
                break
        else:
            raise InputError(
                f"{args.label_key!r} is not a column of obs",
                field="label_key",
                fix=f"choose one of {list(mdata.obs.columns)[:10]} or set it to null.",
            )
    _write_h5(mdata, args.out)
    shapes = ", ".join(f"{k} {a.n_obs}x{a.n_vars}" for k, a in mdata.mod.items())
    print(f"prepared {shapes} -> {args.out}")
    return 0


def cmd_mo_fit(args: argparse.Namespace) -> int:
    """Fit the DAG-VAE; write the fitted MuData and the model folder."""
    from biostruct.multiomics.api import dag_vae

    mdata = _read_h5(args.input)
    graph = None
    if args.graph and args.graph.lstrip().startswith("{"):
        try:
            graph = json.loads(args.graph)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"not valid JSON ({exc.msg} at character {exc.pos})",
                field="--graph",
                fix="give a DAG YAML file, or a JSON object in single quotes.",
            ) from None
    elif args.graph:
        graph = _need_file(args.graph, "--graph")
    model, runtime = _timed_fit(
        dag_vae,
        args,
        mdata,
        graph,
        key_added=args.key,
        n_latent=args.n_latent,
        max_epochs=args.max_epochs,
        batch_key=args.batch_key or None,
        device=args.device,
        seed=args.seed,
        progress=_show_progress(args),
    )
    if getattr(args, "links_csv", ""):
        # the kept feature links (empty, with the header, when the graph has no links)
        _write_table(model.get_links(kept_only=True).drop(columns="kept"), args.links_csv)
    _finish_fit(mdata, _h5_safe(dict(mdata.uns[args.key])), model, args, runtime, "DAG-VAE")
    return 0


def cmd_mo_analyse(args: argparse.Namespace) -> int:
    """UMAP per component, then differential analysis of each cluster against the rest."""
    import numpy as np
    import pandas as pd

    from biostruct.multiomics.model import DAGVAE

    mdata = _read_h5(args.input)
    key = args.key
    comps = [
        k[len(f"X_{key}_") :]
        for k in mdata.obsm.keys()
        if k.startswith(f"X_{key}_") and not k.endswith(("_hat", "_umap"))
    ]
    if not comps:
        raise InputError(
            f"no latents obsm['X_{key}_<component>']",
            field="--key",
            fix="run 'biostruct multiomics fit' first or pass its --key.",
        )
    if args.umap:
        import scanpy as sc

        from biostruct.multiomics.analysis import latent_neighbors

        for c in comps:
            tmp = latent_neighbors(mdata.obsm[f"X_{key}_{c}"], seed=args.seed)
            sc.tl.umap(tmp, random_state=args.seed)
            mdata.obsm[f"X_{key}_{c}_umap"] = tmp.obsm["X_umap"]
    if args.scanpy_umap:
        src = f"X_{key}_{args.scanpy_umap}_umap"
        if args.scanpy_umap not in comps or src not in mdata.obsm:
            raise InputError(
                f"no UMAP of component {args.scanpy_umap!r} (components: {', '.join(comps)})",
                field="--scanpy-umap",
                fix=_did_you_mean(args.scanpy_umap, comps)
                + "name a component, and leave --no-umap out.",
            )
        mdata.obsm["X_umap"] = mdata.obsm[src]  # where sc.pl.umap(mdata) looks
    model = DAGVAE.load(_need_file(args.model_dir, "--model-dir"), mdata, device=args.device)
    graph = mdata.uns.get(key, {}).get("graph") if hasattr(mdata.uns.get(key), "get") else None
    if graph is None or "components" not in graph:
        raise InputError(
            f"uns[{key!r}] holds no graph",
            field="input",
            fix="pass the .h5mu written by 'biostruct multiomics fit' (with the same --key).",
        )
    de_dir = Path(args.de_dir)
    tables: dict[str, pd.DataFrame] = {}
    specs = graph["components"]
    specs = specs.items() if isinstance(specs, dict) else [(c["name"], c) for c in specs]
    jobs: list[tuple[str, str, str, Any]] = []  # (component, cluster column, modality, group)
    for cname, comp in specs:
        cname = str(cname)
        ckey = f"{key}_cluster_{cname}"
        if ckey not in mdata.obs:
            continue
        counts = mdata.obs[ckey].value_counts()
        n = int(counts.sum())
        groups = [g for g in counts.index if min(counts[g], n - counts[g]) >= args.min_cells]
        groups = groups[: args.max_groups]
        mods = np.atleast_1d(np.asarray(comp.get("modalities", []), dtype=object))
        jobs += [(cname, ckey, str(m), g) for m in mods for g in groups]
    steps: Any = jobs
    if _show_progress(args) and jobs:
        from tqdm.auto import tqdm

        steps = tqdm(jobs, desc="differential", unit="comparison")
    for cname, ckey, m, g in steps:
        df = model.differential(
            m,
            groupby=ckey,
            group1=g,
            obs=mdata.obs,
            n_cells=args.de_cells,
            n_samples=args.de_samples,
            seed=args.seed,
        )
        df = df.reset_index().rename(columns={df.index.name or "index": "feature"})
        tables[f"{m}: {cname} cluster {g} vs rest"] = df

    def write_tables(folder: Path) -> None:
        folder.mkdir(parents=True)
        rows = []
        for i, (name, df) in enumerate(tables.items()):
            fn = f"de_{i:02d}.csv"
            df.to_csv(folder / fn, index=False)
            n_de = int(df["is_de_fdr"].sum()) if "is_de_fdr" in df else -1
            rows.append({"file": fn, "comparison": name, "n_features": len(df), "n_de": n_de})
        cols = ["file", "comparison", "n_features", "n_de"]
        pd.DataFrame(rows, columns=cols).to_csv(folder / "index.csv", index=False)

    _save_dir_atomic(de_dir, write_tables)
    _write_h5(mdata, args.out)
    print(f"{len(comps)} components, {len(tables)} differential tables -> {args.out}")
    return 0


# ---------------------------------------------------------------------------------- reports
def _provenance(args: argparse.Namespace, info: dict[str, Any], inputs: Sequence[str]) -> dict:
    from biostruct.report import collect_provenance

    params = dict(info.get("params", {}))
    cfg = _load_config(args.config) if getattr(args, "config", None) else None
    return collect_provenance(
        config=cfg,
        inputs=inputs,
        seed=params.get("seed"),
        device=info.get("device", params.get("device")),
        runtime_s=info.get("runtime_s", info.get("train_seconds")),
    )


def cmd_report_grn(args: argparse.Namespace) -> int:
    from biostruct.report import grn_report

    adata = _read_h5(args.input)
    prov = _provenance(args, dict(adata.uns.get(args.key, {})), [args.input, *args.inputs])
    grn_report(
        adata,
        args.out,
        key=args.key,
        truth=args.truth if args.truth != "none" else None,
        genes=args.genes or None,
        provenance=prov,
        title=args.title,
    )
    print(f"report -> {args.out}")
    return 0


def cmd_report_multiomics(args: argparse.Namespace) -> int:
    import pandas as pd

    from biostruct.report import multiomics_report

    mdata = _read_h5(args.input)
    diff = None
    if args.de_dir:
        index = Path(args.de_dir) / "index.csv"
        if index.exists():
            idx = pd.read_csv(index)
            diff = {r.comparison: pd.read_csv(Path(args.de_dir) / r.file) for r in idx.itertuples()}
    prov = _provenance(args, dict(mdata.uns.get(args.key, {})), [args.input, *args.inputs])
    multiomics_report(
        mdata,
        args.out,
        key=args.key,
        label_key=args.label_key or None,
        differential=diff,
        provenance=prov,
        title=args.title,
    )
    print(f"report -> {args.out}")
    return 0


# ---------------------------------------------------------------------------------- run
def packaged_workflow_dir() -> Path:
    """The workflow shipped inside the package (``biostruct/workflows``, package data)."""
    from importlib.resources import files

    return Path(str(files("biostruct") / "workflows"))


def workflow_dir(override: str | Path | None = None) -> Path:
    """The folder holding the Snakefile.

    In order: ``override`` (``biostruct run --workflow DIR``), the ``BIOSTRUCT_WORKFLOW``
    environment variable, then the workflow shipped inside the package. A folder made by
    ``biostruct workflow init DIR`` may be given as ``DIR`` or ``DIR/workflow``.
    """
    env = os.environ.get("BIOSTRUCT_WORKFLOW")
    given = override if override is not None else (env or None)
    if given is not None:
        field = "--workflow" if override is not None else "BIOSTRUCT_WORKFLOW"
        base = Path(given).expanduser()
        for c in (base, base / "workflow"):
            if (c / "Snakefile").is_file():
                return c.resolve()
        raise ConfigError(
            f"{str(base)!r} holds no Snakefile",
            field=field,
            fix="give a folder made by 'biostruct workflow init DIR' (DIR or DIR/workflow), or "
            "leave it out to use the workflow shipped with biostruct.",
        )
    packaged = packaged_workflow_dir()
    if (packaged / "Snakefile").is_file():
        return packaged
    raise ConfigError(
        f"the Snakemake workflow shipped with biostruct was not found in {packaged}",
        field="BIOSTRUCT_WORKFLOW",
        fix="reinstall biostruct (the wheel ships biostruct/workflows), or point "
        "BIOSTRUCT_WORKFLOW at a folder made by 'biostruct workflow init DIR'.",
    )


def _is_source_checkout(root: Path) -> bool:
    """Whether ``root`` is a biostruct source tree (a ``pyproject.toml`` of biostruct)."""
    try:
        text = (root / "pyproject.toml").read_text()
    except OSError:
        return False
    return re.search(r'(?m)^name\s*=\s*"biostruct"\s*$', text) is not None


def pip_install_spec() -> str | None:
    """What pip can install this biostruct from, for the workflow's conda environment.

    In order: ``BIOSTRUCT_PIP_SPEC`` (a wheel, a source folder or any pip requirement); the
    source checkout this package is imported from; the wheel or folder it was installed from
    (recorded by pip in ``direct_url.json``, PEP 610) while it still exists. ``None`` when none
    is known: biostruct is not on a package registry, so there is no name to fall back to.
    """
    env = os.environ.get("BIOSTRUCT_PIP_SPEC")
    if env:
        return env
    root = Path(__file__).resolve().parents[1]
    if _is_source_checkout(root):
        return str(root)
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        raw = distribution("biostruct").read_text("direct_url.json")
    except (PackageNotFoundError, OSError):
        raw = None
    if raw:
        from urllib.parse import unquote, urlparse

        try:
            url = urlparse(json.loads(raw).get("url", ""))
        except (ValueError, AttributeError):
            return None
        if url.scheme == "file" and Path(unquote(url.path)).exists():
            return unquote(url.path)
    return None


def _copy_workflow_tree(src: Path, dest: Path) -> None:
    """Copy the workflow's files (no caches, no Snakemake state) from ``src`` to ``dest``."""
    shutil.copytree(
        src,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", ".snakemake", "*.pyc", ".tmp.*"),
    )


def cmd_workflow_init(args: argparse.Namespace) -> int:
    """Copy the shipped workflow to ``DIR/workflow`` and a config to ``DIR/config/config.yaml``.

    The layout is the one of the snakemake-workflows template; the copy is independent of the
    installed package, so its rules can be edited. Nothing is overwritten unless ``--force``.
    """
    src = workflow_dir()
    dest = Path(args.dir).expanduser().resolve()
    wf_dest = dest / "workflow"
    cfg_dest = dest / "config" / "config.yaml"
    template = {"demo": "default.yaml", "own-data": "template_own_data.yaml"}[args.template]
    existing = [p for p in (wf_dest, cfg_dest) if p.exists()]
    if existing and not args.force:
        raise ConfigError(
            f"{existing[0]} exists already",
            field="DIR",
            fix="choose an empty or new folder, or pass --force to replace the workflow copy "
            "and the config there.",
        )
    dest.mkdir(parents=True, exist_ok=True)
    if wf_dest.exists():
        shutil.rmtree(wf_dest)
    tmp = Path(tempfile.mkdtemp(prefix=".workflow.", dir=dest))
    try:
        _copy_workflow_tree(src, tmp / "workflow")
        os.replace(tmp / "workflow", wf_dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cfg_dest.parent.mkdir(parents=True, exist_ok=True)
    text = (src / "config" / template).read_text()
    write_atomic(cfg_dest, lambda t: t.write_text(text), suffix=".yaml")
    print(f"workflow -> {wf_dest}")
    print(f"config   -> {cfg_dest}")
    print(
        "Edit the config (and the rules, if you like), then run:\n"
        f"  biostruct run all --workflow {wf_dest} --config {cfg_dest} --directory {dest}\n"
        "or with Snakemake itself:\n"
        f"  snakemake --snakefile {wf_dest / 'Snakefile'} --configfile {cfg_dest} "
        f"--directory {dest} --cores all"
    )
    return 0


#: Names that become folders (dataset names, prior keys): the same pattern as the workflow's
#: wildcard_constraints (workflows/rules/common.smk). No '..', no leading '.' or '-', no shell
#: metacharacters.
SAFE_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]|\.(?!\.))*")


def check_run_config(path: str | Path, *, allow_yte: bool = False) -> dict[str, Any]:
    """Read a workflow config with ``yaml.safe_load`` and check it before Snakemake sees it.

    Snakemake evaluates YTE templates (``__use_yte__: true``), which run Python code from the
    file, even in a dry run: such a config is refused unless ``allow_yte``. Dataset names and
    prior keys become folder names, so they must match :data:`SAFE_NAME`; names under ``run``
    must be defined under ``datasets`` (with a did-you-mean).

    Raises
    ------
    ConfigError
        Unreadable YAML, a YTE config without ``allow_yte``, an unsafe or unknown name.
    """
    cfg = _load_config(str(path))
    if "__use_yte__" in cfg and not allow_yte:
        raise ConfigError(
            "the config is a YTE template (__use_yte__), which Snakemake would evaluate as "
            "Python code",
            field=f"{path}: __use_yte__",
            fix="write plain YAML, or pass --allow-yte if you trust every line of this file.",
        )
    for part in ("grn", "multiomics"):
        sec = cfg.get(part) or {}
        if not isinstance(sec, dict):
            continue  # the schema reports it
        datasets = sec.get("datasets") or {}
        runs = sec.get("run") or []
        names = list(datasets) if isinstance(datasets, dict) else []
        for name in names + (list(runs) if isinstance(runs, list) else []):
            if not SAFE_NAME.fullmatch(str(name)):
                raise ConfigError(
                    f"the name {name!r} cannot be used as a folder name",
                    field=f"{part}.datasets",
                    fix="use letters, digits, '_', '-' and single dots only (no '..', no "
                    "leading '.' or '-', no spaces, quotes or '$').",
                )
        for name in runs if isinstance(runs, list) else []:
            if names and name not in names:
                raise ConfigError(
                    f"{name!r} is not defined under {part}.datasets",
                    field=f"{part}.run",
                    fix=_did_you_mean(name, names) + f"defined: {', '.join(map(str, names))}.",
                )
        methods = sec.get("methods") if part == "grn" else None
        for method in methods if isinstance(methods, list) else []:
            known = _schema_methods()
            if known and method not in known:
                raise ConfigError(
                    f"unknown method {method!r}",
                    field="grn.methods",
                    fix=_did_you_mean(method, known) + f"use one of {', '.join(known)}.",
                )
        priors = list(sec.get("priors") or []) if part == "grn" else []
        for spec in datasets.values() if isinstance(datasets, dict) else []:
            if isinstance(spec, dict):
                priors += list(spec.get("priors") or [])
        for prior in priors:
            if not SAFE_NAME.fullmatch(str(prior)):
                raise ConfigError(
                    f"the prior key {prior!r} cannot be used as a folder name",
                    field="grn.priors",
                    fix="use letters, digits, '_', '-' and single dots only.",
                )
    return cfg


def _schema_methods() -> list[str]:
    """The GRN methods the workflow schema accepts ([] when the schema is not found)."""
    import yaml

    try:
        schema_file = workflow_dir() / "schemas" / "config.schema.yaml"
        schema = yaml.safe_load(schema_file.read_text())
        return list(schema["properties"]["grn"]["properties"]["methods"]["items"]["enum"])
    except (BiostructError, OSError, KeyError, TypeError, yaml.YAMLError):
        return []


def _extra_configfiles(extra: Sequence[str]) -> list[str]:
    """Config files named in the options passed through to Snakemake."""
    files: list[str] = []
    taking = False
    for a in extra:
        if a in ("--configfile", "--configfiles"):
            taking = True
        elif a.startswith(("--configfile=", "--configfiles=")):
            files.append(a.split("=", 1)[1])
            taking = False
        elif taking and not a.startswith("-"):
            files.append(a)
        else:
            taking = False
    return files


def snakemake_command(args: argparse.Namespace) -> list[str]:
    """The ``python -m snakemake`` command line that ``biostruct run`` executes.

    The config (and any ``--configfile`` passed through after ``--``) is checked first with
    :func:`check_run_config`.
    """
    wf = workflow_dir(getattr(args, "workflow", None))
    target = {"grn": "grn_all", "multiomics": "multiomics_all", "all": "all"}[args.pipeline]
    config = args.config or str(wf / "config" / "default.yaml")
    allow_yte = bool(getattr(args, "allow_yte", False))
    check_run_config(_need_file(config, "--config"), allow_yte=allow_yte)
    for extra_cfg in _extra_configfiles(args.snakemake_args or []):
        check_run_config(_need_file(extra_cfg, "--configfile"), allow_yte=allow_yte)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        target,
        "--snakefile",
        str(wf / "Snakefile"),
        "--configfile",
        str(_need_file(config, "--config").resolve()),
        "--directory",
        str(Path(args.directory).resolve()),
        "--cores",
        str(args.cores),
        "--printshellcmds",
        "--show-failed-logs",
        # every rule writes atomically, so a job cut short by a kill is simply run again
        "--rerun-incomplete",
    ]
    if args.profile:
        prof = Path(args.profile)
        if not prof.exists() and (wf / "profiles" / args.profile).is_dir():
            prof = wf / "profiles" / args.profile
        cmd += ["--workflow-profile", str(prof)]
    else:
        cmd += ["--workflow-profile", "none"]
    if getattr(args, "unlock", False):
        cmd.append("--unlock")
    if args.dry_run:
        cmd.append("--dry-run")
    if args.device:
        cmd += ["--config", f"device={args.device}"]
    if args.report:
        if not str(args.report).lower().endswith(".zip"):
            raise ConfigError(
                f"Snakemake's report must be a .zip here, not {args.report!r}: a single-file "
                ".html report shows a blank pane for biostruct's ~5 MB per-run reports",
                field="--report",
                fix="use e.g. --report report.zip; it unpacks to a folder whose report.html "
                "opens offline.",
            )
        cmd += ["--report", str(Path(args.report).resolve()), "--report-after-run"]
    cmd += list(args.snakemake_args or [])
    return cmd


def _check_and_print(args: argparse.Namespace, *, quiet: bool = False) -> int:
    """Run :func:`biostruct.runconfig.check_config` on ``args.config`` and print the outcome.

    Returns
    -------
    int
        0 when the config is ready to run, 2 when it has problems (each printed with its fix).
    """
    from biostruct.runconfig import check_config

    wf = workflow_dir(getattr(args, "workflow", None))
    config = args.config or str(wf / "config" / "default.yaml")
    _need_file(config, "--config")
    cfg, problems = check_config(
        config, allow_yte=bool(getattr(args, "allow_yte", False)), workflow=wf
    )
    if problems:
        n = len(problems)
        print(f"biostruct: error: {config}: {n} problem{'s' * (n != 1)}:", file=sys.stderr)
        for exc in problems:
            print(f"  - {exc}", file=sys.stderr)
        if quiet:
            print("(biostruct run --no-check skips this check)", file=sys.stderr)
        return 2
    if "__use_yte__" in cfg:
        if not quiet:
            print(f"{config}: a YTE template: Snakemake checks it once rendered, not biostruct")
        return 0
    if not quiet:
        runs = [
            f"{part} {name}"
            for part in ("grn", "multiomics")
            if cfg[part].get("enabled", True)
            for name in cfg[part]["run"]
        ]
        print(f"{config}: OK ({', '.join(runs) or 'nothing to run'})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """``biostruct check --config FILE``: the config and its input files, before any job."""
    return _check_and_print(args)


#: seconds Snakemake gets to stop its jobs after a forwarded signal before it is killed
STOP_GRACE_S = 30.0


def _child_setup() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()  # its own process group: a signal to biostruct reaches it exactly once
    try:  # Linux: Snakemake gets SIGTERM if biostruct itself is killed (even by SIGKILL)
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _lock_hint(args: argparse.Namespace) -> None:
    locks = Path(args.directory).resolve() / ".snakemake" / "locks"
    if locks.is_dir() and any(locks.iterdir()):
        print(
            f"biostruct: note: {locks} holds a lock, left by a run that was killed (or by a "
            "run still active in this folder). If no other run uses this folder, remove it "
            f"with 'biostruct run {args.pipeline} --unlock --directory {args.directory}' and "
            "run again; jobs cut short are re-run (--rerun-incomplete).",
            file=sys.stderr,
        )


def cmd_run(args: argparse.Namespace) -> int:
    """Run Snakemake in its own process group; SIGTERM/SIGINT/SIGHUP are forwarded to it (and
    to its jobs), and after a grace period the group is killed. Returns 128 + signal number
    when stopped by a signal."""
    cmd = snakemake_command(args)
    if getattr(args, "check", True) and not args.unlock:
        if not _extra_configfiles(args.snakemake_args or []):  # merged configs: Snakemake's
            rc = _check_and_print(args, quiet=True)
            if rc:
                return rc
    print("+ " + " ".join(cmd), flush=True)
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_child_setup)  # noqa: PLW1509
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            pass

    sigs = [signal.SIGTERM, signal.SIGINT, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    old = {s: signal.signal(s, forward) for s in sigs}
    deadline: float | None = None
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                deadline = time.monotonic() + STOP_GRACE_S
            if deadline is not None and time.monotonic() > deadline:  # did not stop in time
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = float("inf")
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if received:
        name = signal.Signals(received[0]).name
        print(
            f"biostruct: stopped by {name}; Snakemake and its jobs were stopped. Run the same "
            "command again to continue (finished results are kept, cut-short jobs re-run).",
            file=sys.stderr,
        )
        try:  # jobs of the group that outlived Snakemake
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return 128 + int(received[0])
    if rc < 0:  # Snakemake itself was killed by a signal
        rc = 128 - rc
    if rc != 0:
        _lock_hint(args)
    return rc


# ---------------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written; appends ``(default: X)`` to every option with
    a default worth showing (not a flag, not None or empty) whose help does not state it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or action.nargs == 0  # flags: store_true / store_false
            or default is None
            or (isinstance(default, str | list) and not default)
            or default == argparse.SUPPRESS
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return text
        return text + " (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose subparsers share :class:`_HelpFormatter` and whose epilog may be a
    function, called only when the help is shown (the GRN method list imports torch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def _methods_epilog() -> str:
    """One line per GRN method, for 'biostruct grn fit --help'."""
    import textwrap

    from biostruct.grn.methods import METHODS, NEEDS_PRIOR

    width = max(map(len, METHODS))
    cols = max(60, min(120, shutil.get_terminal_size((100, 24)).columns) - 2)
    lines = ["methods (--method; * needs a prior):"]
    for name, text in METHODS.items():
        star = "*" if name in NEEDS_PRIOR else " "
        first = f"  {name:<{width}} {star} "
        lines += textwrap.wrap(text, cols, initial_indent=first, subsequent_indent=" " * len(first))
    return "\n".join(lines)


def _common_fit(p: argparse.ArgumentParser, suffix: str, key: str) -> None:
    """Options of every fit step; ``suffix`` is the type of its output file (``".h5ad"``)."""
    p.add_argument("--model-dir", metavar="DIR", help="folder to save the trained model in")
    p.add_argument("--out", required=True, help=f"output {suffix}")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--key", default=None, help=f"key_added of the results (default: {key})")
    p.add_argument(
        "--train-kwargs",
        default="",
        metavar="JSON",
        help="extra training options as a JSON object, e.g. '{\"lr\": 0.005}'",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar of the training (tqdm, on stderr); default: on when stderr is a "
        "terminal, off in pipeline logs",
    )


def _add_check_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workflow",
        metavar="DIR",
        help="a workflow copy made by 'biostruct workflow init DIR' (default: the workflow "
        "shipped with biostruct; BIOSTRUCT_WORKFLOW also sets it)",
    )
    p.add_argument(
        "--allow-yte",
        action="store_true",
        help="allow a YTE template config (__use_yte__), which runs Python code from the file; "
        "only for configs you trust",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``biostruct`` command."""
    top = _Parser(
        prog="biostruct",
        description="Structure-guided models for single-cell data: DASH-pruned neural-ODE gene\n"
        "regulatory networks and DAG-structured multi-omics VAEs, with Snakemake pipelines.",
        epilog=_EPILOG,
    )
    from biostruct import __version__

    top.add_argument("--version", action="version", version=f"biostruct {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # run
    p = sub.add_parser(
        "run",
        help="run a pipeline with Snakemake",
        description="Run a pipeline end to end with Snakemake. Results go under "
        "<directory>/results/. The config and its input files are checked first (as by "
        "'biostruct check'). Relative paths in the config are resolved against the config "
        "file's folder.",
        epilog="Options after '--' are passed to Snakemake unchanged, e.g. -- --keep-going",
    )
    p.add_argument(
        "pipeline", choices=["grn", "multiomics", "all"], help="the pipeline; 'all' runs both"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config YAML (default: the workflow's config/default.yaml, demo data)",
    )
    p.add_argument("--profile", help="Snakemake profile: local, slurm, kubernetes or a folder")
    p.add_argument("--cores", default="1", help="CPU cores to use (a number or 'all')")
    p.add_argument("--directory", default=".", metavar="DIR", help="run directory")
    p.add_argument("-n", "--dry-run", action="store_true", help="show the jobs, run nothing")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override the config device")
    p.add_argument(
        "--report",
        metavar="ZIP",
        help="also build Snakemake's report after the run, as a .zip (a single .html cannot "
        "show biostruct's reports)",
    )
    p.add_argument(
        "--unlock",
        action="store_true",
        help="remove the lock a killed run left in the run directory, then stop",
    )
    p.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="skip the check of the input files named in the config",
    )
    _add_check_options(p)
    p.set_defaults(func=cmd_run)

    # check
    p = sub.add_parser(
        "check",
        help="check a workflow config and its input files before running it",
        description="Check a workflow config without running anything: the schema (unknown or "
        "misspelt keys, values out of range), dataset names, and for your own files that they "
        "exist, that time_key / trajectory_key / label_key / batch_key are obs columns (time "
        "numeric), that prior and truth keys are varp keys, and that the prior_file shares "
        "genes with the data (missing: drop ignores the others). Relative paths are resolved "
        "against the config file's folder. Prints every problem with its fix; exits 2 when "
        "there is one.",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config YAML (default: the workflow's config/default.yaml)",
    )
    _add_check_options(p)
    p.set_defaults(func=cmd_check)

    # workflow
    w = sub.add_parser("workflow", help="copy the Snakemake workflow to edit it")
    wsub = w.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = wsub.add_parser(
        "init",
        help="copy the workflow to DIR/workflow and a config to DIR/config/config.yaml",
        description="Copy the Snakemake workflow shipped with biostruct to DIR/workflow and a "
        "config to DIR/config/config.yaml, for users who want to edit rules or profiles. Run it "
        "with 'biostruct run all --workflow DIR/workflow --config DIR/config/config.yaml'.",
    )
    p.add_argument("dir", metavar="DIR", help="target folder (created when missing)")
    p.add_argument(
        "--template",
        choices=["demo", "own-data"],
        default="own-data",
        help="config to start from: 'own-data' (your .h5ad/.h5mu) or 'demo' (the embedded "
        "demo data)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing copy")
    p.set_defaults(func=cmd_workflow_init)

    # datasets
    d = sub.add_parser("datasets", help="list or download datasets")
    dsub = d.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = dsub.add_parser(
        "list", help="the datasets biostruct knows (embedded ones need no download)"
    )
    p.set_defaults(func=cmd_datasets_list)
    p = dsub.add_parser("fetch", help="download a dataset (checksum-verified) and print its files")
    p.add_argument("name", help="a dataset name from 'biostruct datasets list'")
    p.set_defaults(func=cmd_datasets_fetch)

    # grn
    g = sub.add_parser("grn", help="GRN pipeline steps: prepare, fit, evaluate, summarise")
    gsub = g.add_subparsers(dest="action", metavar="STEP", required=True)
    p = gsub.add_parser(
        "prepare",
        help="load or simulate trajectories into an .h5ad",
        description="Write an AnnData (observations x genes, obs time and "
        "trajectory) ready for 'grn fit'.",
    )
    p.add_argument(
        "--source",
        choices=["simulate", "dataset", "file"],
        default="simulate",
        help="simulate SIM690 trajectories, load a named dataset, or read your .h5ad",
    )
    p.add_argument("--name", help="dataset name (with --source dataset)")
    p.add_argument("--path", help="your .h5ad (with --source file)")
    p.add_argument(
        "--n-trajectories", type=int, default=10, help="simulated trajectories (--source simulate)"
    )
    p.add_argument(
        "--times", nargs="+", type=float, help="simulated time points (default: 0 2 3 7 9)"
    )
    p.add_argument("--noise-sd", type=float, default=0.0, help="noise added to simulated data")
    p.add_argument(
        "--prior-file",
        help="prior network CSV (matrix or source,target,weight); stored as varp['prior']",
    )
    p.add_argument(
        "--prior-missing",
        choices=["raise", "drop"],
        default="raise",
        help="prior genes absent from the data: 'raise' stops and names them, 'drop' ignores "
        "their edges",
    )
    p.add_argument(
        "--n-genes", type=int, default=0, help="keep only the N most variable genes (0: all)"
    )
    p.add_argument("--time-key", default="time", help="obs column of the (pseudo)time")
    p.add_argument(
        "--trajectory-key", default="trajectory", help="obs column of the series/lineage"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the simulation")
    p.add_argument("--out", required=True, help="output .h5ad")
    p.set_defaults(func=cmd_grn_prepare)

    p = gsub.add_parser(
        "fit",
        help="fit DASH or a baseline; write fitted .h5ad and model",
        description="Fit a GRN method to a prepared .h5ad: varp[KEY] (signed edges), uns[KEY], "
        "layers[KEY_pred] and knockout effects.",
        epilog=_methods_epilog,
    )
    p.add_argument("input", help="prepared .h5ad")
    p.add_argument("--method", default="dash", help="the method (one line each below)")
    p.add_argument("--prior", default="prior", help="varp key of the prior ('none' for no prior)")
    p.add_argument("--truth", default="true_network", help="varp key of the ground truth, if any")
    p.add_argument("--hidden", type=int, default=40, help="hidden width of the vector field")
    p.add_argument("--epochs", type=int, default=200, help="maximum training epochs")
    p.add_argument(
        "--knockouts",
        type=int,
        default=3,
        help="simulate knockouts of the N strongest regulators (0: none)",
    )
    p.add_argument("--time-key", default="time", help="obs column of the (pseudo)time")
    p.add_argument(
        "--trajectory-key", default="trajectory", help="obs column of the series/lineage"
    )
    _common_fit(p, ".h5ad", "grn")
    p.set_defaults(func=cmd_grn_fit, key="grn")

    p = gsub.add_parser("evaluate", help="edge list and metrics against the ground truth")
    p.add_argument("input", help="fitted .h5ad")
    p.add_argument("--truth", default="true_network", help="varp key of the ground truth, if any")
    p.add_argument("--key", default="grn", help="key of the fit (its --key)")
    p.add_argument("--top", type=int, default=0, help="write only the top N edges (0: all)")
    p.add_argument("--label", default="", help="run label stored in the metrics")
    p.add_argument("--edges", required=True, help="output edge table (.csv or .parquet)")
    p.add_argument("--metrics", required=True, help="output metrics .json")
    p.add_argument("--out", required=True, help="output .h5ad (metrics added)")
    p.set_defaults(func=cmd_grn_evaluate)

    p = gsub.add_parser("summarise", help="one table from many metrics .json files")
    p.add_argument("metrics", nargs="+", help="metrics .json files written by 'grn evaluate'")
    p.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    p.set_defaults(func=cmd_grn_summarise)

    # multiomics
    m = sub.add_parser("multiomics", help="multi-omics pipeline steps: prepare, fit, analyse")
    msub = m.add_subparsers(dest="action", metavar="STEP", required=True)
    p = msub.add_parser("prepare", help="load a MuData, optionally subsample")
    p.add_argument(
        "--source",
        choices=["dataset", "file"],
        default="dataset",
        help="a named dataset or your .h5mu",
    )
    p.add_argument("--name", help="dataset name (with --source dataset)")
    p.add_argument("--path", help="your .h5mu (with --source file)")
    p.add_argument("--n-cells", type=int, default=0, help="random subsample of N cells (0: all)")
    p.add_argument(
        "--max-features",
        type=int,
        default=0,
        help="keep the N features with most counts per modality (0: all)",
    )
    p.add_argument("--label-key", default="", help="obs column of known cell labels, if any")
    p.add_argument("--seed", type=int, default=0, help="seed of the subsample")
    p.add_argument("--out", required=True, help="output .h5mu")
    p.set_defaults(func=cmd_mo_prepare)

    p = msub.add_parser("fit", help="fit the DAG-VAE; write fitted .h5mu and model")
    p.add_argument("input", help="prepared .h5mu")
    p.add_argument(
        "--graph", help="DAG YAML file (default: ATAC -> RNA, else one root per modality)"
    )
    p.add_argument("--n-latent", type=int, default=10, help="latent dimensions per component")
    p.add_argument("--max-epochs", type=int, default=100, help="epochs per component")
    p.add_argument("--batch-key", default="", help="obs column of batches, if any")
    p.add_argument(
        "--links-csv",
        default="",
        help="write the kept feature links of the graph's 'links' (parent_feature, "
        "child_feature, weight, sign, distance_kb, prior) to this CSV",
    )
    _common_fit(p, ".h5mu", "dagvae")
    p.set_defaults(func=cmd_mo_fit, key="dagvae")

    p = msub.add_parser("analyse", help="UMAPs per component and differential analysis")
    p.add_argument("input", help="fitted .h5mu")
    p.add_argument("--model-dir", required=True, help="the model folder written by 'fit'")
    p.add_argument("--key", default="dagvae", help="key of the fit (its --key)")
    p.add_argument("--no-umap", dest="umap", action="store_false", help="skip the UMAPs")
    p.add_argument(
        "--scanpy-umap",
        default="",
        metavar="COMPONENT",
        help="also write this component's UMAP to obsm['X_umap'], where sc.pl.umap(mdata) "
        "looks (every UMAP is in obsm['X_<key>_<component>_umap'] for "
        "sc.pl.embedding(mdata, basis=...))",
    )
    p.add_argument("--max-groups", type=int, default=3, help="clusters tested per component")
    p.add_argument("--min-cells", type=int, default=10, help="smallest cluster tested")
    p.add_argument("--de-cells", type=int, default=200, help="cells drawn per group")
    p.add_argument("--de-samples", type=int, default=10, help="posterior samples per cell")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--seed", type=int, default=0, help="seed of the UMAPs and the sampling")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over the differential comparisons; default: on when stderr is a "
        "terminal",
    )
    p.add_argument("--de-dir", required=True, help="output folder of differential tables")
    p.add_argument("--out", required=True, help="output .h5mu")
    p.set_defaults(func=cmd_mo_analyse)

    # report
    r = sub.add_parser("report", help="build a self-contained HTML report")
    rsub = r.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, func, key in (
        ("grn", cmd_report_grn, "grn"),
        ("multiomics", cmd_report_multiomics, "dagvae"),
    ):
        p = rsub.add_parser(kind, help=f"HTML report of a {kind} result file")
        p.add_argument("input", help="result .h5ad" if kind == "grn" else "result .h5mu")
        p.add_argument("--out", required=True, help="output .html")
        p.add_argument("--key", default=key, help="key of the fit (its --key)")
        p.add_argument("--config", help="run config to show under provenance")
        p.add_argument("--inputs", nargs="*", default=[], help="more input files to checksum")
        p.add_argument("--title", help="report title (default: from the method or model)")
        if kind == "grn":
            p.add_argument("--truth", default="auto", help="varp key of the ground truth, 'none'")
            p.add_argument("--genes", nargs="*", help="genes for observed-vs-predicted plots")
        else:
            p.add_argument("--label-key", default="", help="obs column of known cell labels")
            p.add_argument("--de-dir", help="folder of differential tables from 'analyse'")
        p.set_defaults(func=func)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``biostruct`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:  # `biostruct run ... -- <more snakemake options>`
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    args.snakemake_args = extra
    try:
        return int(args.func(args) or 0)
    except BiostructError as exc:
        print(f"biostruct: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("biostruct: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return 0
    except Exception as exc:  # a bug or an input nobody checked yet: one line, not a traceback
        if os.environ.get("BIOSTRUCT_DEBUG"):
            raise
        print(
            f"biostruct: unexpected error: {type(exc).__name__}: {exc}\n"
            "biostruct: this is a bug or an input biostruct does not check yet; set "
            "BIOSTRUCT_DEBUG=1 to see the traceback, and please report it.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
