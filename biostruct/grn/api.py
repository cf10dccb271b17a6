"""Scanpy-style entry point: ``infer_grn(adata, prior, ...)``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from biostruct.errors import ConfigError, InputError
from biostruct.grn.checks import fit_warnings
from biostruct.grn.data import check_input
from biostruct.grn.model import GRNModel, coerce_prior

logger = logging.getLogger("biostruct.grn")

__all__ = ["infer_grn"]


def _history_table(history: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-epoch history as columns (h5ad-writable)."""
    if not history:
        return {}
    out: dict[str, np.ndarray] = {
        "epoch": np.array([h["epoch"] for h in history], dtype=np.int64),
        "train_loss": np.array([h["train_loss"] for h in history], dtype=np.float64),
        "val_loss": np.array([h["val_loss"] for h in history], dtype=np.float64),
        "lr": np.array([h["lr"] for h in history], dtype=np.float64),
        "seconds": np.array([h["seconds"] for h in history], dtype=np.float64),
        "pruned": np.array([bool(h["pruned"]) for h in history]),
    }
    for layer in history[0]["density"]:
        name = "density_" + layer.replace(".weight", "")
        out[name] = np.array([h["density"][layer] for h in history], dtype=np.float64)
    return out


def _h5ad_safe(obj: Any) -> Any:
    """Nested dicts with None -> "none" and tuples -> arrays, so that write_h5ad accepts them."""
    if isinstance(obj, dict):
        return {str(k): _h5ad_safe(v) for k, v in obj.items()}
    if obj is None:
        return "none"
    if isinstance(obj, list | tuple):
        if all(isinstance(v, str) for v in obj):
            return np.array(obj, dtype=object) if obj else np.array([], dtype=str)
        if all(isinstance(v, int | float | bool | np.number) for v in obj):
            return np.asarray(obj)
        return {str(i): _h5ad_safe(v) for i, v in enumerate(obj)}
    return obj


_SCORE_NAMES = {
    "velocity": "ensemble mean Jacobian",
    "posterior": "posterior edge probability (prior + conditional velocity evidence), signed",
}


def infer_grn(
    adata: Any,
    prior: Any = None,
    *,
    time_key: str | Sequence[str] = "time",
    trajectory_key: str | None = "trajectory",
    method: str = "auto",
    key_added: str = "grn",
    hidden: int = 40,
    epochs: int = 200,
    device: str = "auto",
    seed: int = 0,
    copy: bool = False,
    truth: Any = None,
    predict: bool = False,
    layer: str | None = None,
    split_key: str | None = "split",
    val_fraction: float = 0.066,
    checkpoint: str | None = None,
    lineage_key: str | None = None,
    cells: bool | str = "auto",
    **train_kwargs: Any,
) -> GRNModel | tuple[Any, GRNModel]:
    """Infer a signed gene regulatory network with a PHOENIX neural ODE pruned by DASH.

    Parameters
    ----------
    adata
        Observations x genes. Time series: ``obs[time_key]`` and ``obs[trajectory_key]``
        (expression roughly in [0, 1]). Single cells (as from scanpy): ``obs[time_key]`` a
        pseudotime such as ``"dpt_pseudotime"`` (ties allowed, NaN = not on a trajectory) with
        ``lineage_key`` (categorical) or no lineages, or ``time_key`` a list of pseudotime
        columns, one per lineage, NaN off-lineage (shared progenitors have several).
        Non-negative expression (log-normalised is fine); each gene is scaled by its maximum.
    prior
        Prior network: G x G array (row = regulator, column = target, signed), a DataFrame
        (``source/target/weight`` edge list, or a labelled dense matrix), a file, or a key of
        ``adata.varp``. Needed by ``dash``, ``prior_only`` and ``phoenix``.
    method
        ``"auto"`` (default): ``"posterior"`` with a prior, ``"velocity"`` without.
        ``"posterior"``: the prior combined with conditional velocity evidence (how much each
        target's velocity needs each regulator given its other prior regulators, in an
        additive spline model; a signed prior's edges are tested in their claimed sign);
        ``varp[key_added]`` ranks edges by posterior probability and DASH's pruned network is
        written to ``varp[key_added + "_dash"]``. ``"velocity"``: bagged PHOENIX fields
        fitted to the observed velocities, edges = mean Jacobian over the observed states.
        Single-method fits: ``"dash"``, ``"imp"``, ``"prior_only"``, ``"phoenix"`` (dense +
        prior loss), ``"dense"``, ``"posthoc"``, ``"l1"``, ``"lrr"``, ``"pilot"``
        (``varp[key_added]`` = PHOENIX effect matrix).
    key_added
        Where results go (see Returns).
    hidden
        Hidden width of each branch of the vector field.
    epochs
        Maximum training epochs.
    device
        ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
    seed
        Seeds initialisation, validation split and training.
    copy
        Work on a copy of ``adata`` and return it as well.
    truth
        Optional ground truth (array or ``adata.varp`` key) for edge metrics in ``uns``.
    predict
        Also write ``layers[key_added + "_pred"]``: each trajectory simulated from its first state.
    layer, split_key, val_fraction, checkpoint, lineage_key, cells
        See :class:`GRNModel` and :meth:`GRNModel.train`.
    train_kwargs
        Training overrides (``lr``, ``batch_size``, ``solver``, ``rtol``, ``lam_ppi``, ...).

    Returns
    -------
    GRNModel, or ``(adata_copy, GRNModel)`` with ``copy=True`` (as :func:`biostruct.tl.dag_vae`).
    Writes, only after a successful fit (``adata`` is untouched on failure):

    - ``adata.varp[key_added]``: signed edge scores, regulator rows, target columns (see
      ``method``; ``uns[key_added]["score"]`` names which);
    - ``adata.varp[key_added + "_dash"]``: DASH's sparse signed effect matrix (``posterior``);
    - ``adata.varp[key_added + "_stability"]``: share of ensemble members agreeing on the
      edge's sign (``velocity``);
    - ``adata.uns[key_added]``: ``params`` (method, sizes, configs), ``sparsity`` (per layer and
      pooled), ``history`` (per epoch: epoch, train_loss, val_loss, lr, seconds, pruned,
      density_<layer>), ``events`` (pruning epochs and per-layer densities), ``train_seconds``,
      ``test_mse`` (when ``obs[split_key] == "test"`` observations exist), ``metrics`` (with
      ``truth``), ``top_edges`` (the 50 strongest edges: source, target, weight),
      ``warnings`` (fit-quality findings of :mod:`biostruct.grn.checks`, also logged; empty
      when the fit passed every check);
    - ``adata.layers[key_added + "_pred"]`` with ``predict=True``.
    """
    outputs = {key_added, key_added + "_dash", key_added + "_stability"}
    inputs = {k for k in (prior, truth) if isinstance(k, str) and k in adata.varp}
    if outputs & inputs:
        raise ConfigError(
            f"key_added={key_added!r} would overwrite the input adata.varp[{sorted(outputs & inputs)[0]!r}]",
            field="key_added",
            fix="choose another key_added, e.g. key_added='grn'",
        )
    check_input(adata, time_key=time_key, layer=layer)
    if predict and not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()][0]
        raise InputError(
            f"observation names are not unique (e.g. {str(dup)!r}), so predictions cannot be "
            "matched to their rows",
            field="adata.obs_names",
            fix="call adata.obs_names_make_unique() first, or pass predict=False",
        )
    target = adata.copy() if copy else adata
    if method == "auto":
        method = "velocity" if prior is None else "posterior"
    model = GRNModel(
        target,
        prior,
        time_key=time_key,
        trajectory_key=trajectory_key,
        layer=layer,
        split_key=split_key,
        hidden=hidden,
        val_fraction=val_fraction,
        seed=seed,
        device=device,
        lineage_key=lineage_key,
        cells=cells,
    )
    if predict and model.cell_mode:
        raise ConfigError(
            "predict=True simulates each trajectory from its first state, which single cells "
            "do not have",
            field="predict",
            fix="use predict=False, or model.predict_trajectories(model.data) for the lineage "
            "mean paths",
        )
    truth_m = None
    if truth is not None:
        truth_m = coerce_prior(target, truth, missing="drop")
    model.train(method, epochs=epochs, checkpoint=checkpoint, **train_kwargs)

    # compute everything first, then write (no half-written outputs)
    effect = model.edge_scores().astype(np.float32)
    warnings = fit_warnings(model)
    for w in warnings:
        logger.warning("infer_grn(%s): %s", key_added, w)
    uns: dict[str, Any] = {
        "params": _h5ad_safe(model.params),
        "sparsity": model.sparsity(),
        "history": _history_table(model.history),
        "events": _h5ad_safe(
            {
                "epoch": [e["epoch"] for e in model.events],
                "fraction": [e["fraction"] for e in model.events],
                **{
                    "density_" + k.replace(".weight", ""): [e["densities"][k] for e in model.events]
                    for k in (model.events[0]["densities"] if model.events else {})
                },
            }
        ),
        "train_seconds": float(model.train_seconds),
        "test_mse": model.test_mse(),
        "score": _SCORE_NAMES.get(model.method or "", "effect"),
        "warnings": np.array(warnings, dtype=object) if warnings else np.array([], dtype=str),
    }
    if model.posterior_info:
        uns["posterior"] = dict(model.posterior_info)
    if truth_m is not None:
        uns["metrics"] = {k: float(v) for k, v in model.evaluate(truth_m, effect).items()}
    top = model.top_edges(50, matrix=effect)
    uns["top_edges"] = {
        "source": top["source"].to_numpy(dtype=object),
        "target": top["target"].to_numpy(dtype=object),
        "weight": top["weight"].to_numpy(),
    }
    pred_layer = None
    if predict:
        assert model.data is not None
        pred_layer = np.full(target.shape, np.nan, dtype=np.float32)
        pos = {n: i for i, n in enumerate(np.asarray(target.obs_names).astype(str))}
        for parts in (model.data, model.test):
            if parts is None:
                continue
            for names, p in zip(parts.obs_names, model.predict_trajectories(parts)):
                pred_layer[[pos[n] for n in names]] = p.astype(np.float32)
    target.varp[key_added] = effect
    if model.method == "posterior":
        target.varp[key_added + "_dash"] = model.effect_matrix().astype(np.float32)
    if model.velocity is not None:
        target.varp[key_added + "_stability"] = model.velocity.stability.astype(np.float32)
    target.uns[key_added] = uns
    if pred_layer is not None:
        target.layers[key_added + "_pred"] = pred_layer
    return (target, model) if copy else model
