"""User-facing GRN model: data setup from AnnData, training, results, save/load."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from biostruct._device import resolve_device
from biostruct.errors import ConfigError, InputError, NotFittedError, PriorError
from biostruct.grn import extract, metrics, perturb
from biostruct.grn import pseudotime as pt
from biostruct.grn.data import (
    Trajectories,
    Transitions,
    split_validation,
    trajectories_from_anndata,
)
from biostruct.grn.field import PhoenixField
from biostruct.grn.methods import METHODS, NEEDS_PRIOR, build_configs
from biostruct.grn.solve import SolverConfig
from biostruct.grn.train import PruningConfig, TrainConfig, Trainer

__all__ = ["GRNModel", "resolve_device", "coerce_prior"]


def coerce_prior(adata: Any, prior: Any, *, missing: str = "raise") -> np.ndarray | None:
    """A G x G prior (regulator rows) aligned to ``adata.var_names``.

    ``prior`` may be ``None``, a key of ``adata.varp``, a file path, a G x G array, or a
    DataFrame (``source/target/weight`` edge list, or a dense matrix labelled with gene names).

    Raises
    ------
    PriorError
        Unknown genes (``missing="raise"``), wrong shape, non-finite values, or an all-zero prior.
    """
    if prior is None:
        return None
    if isinstance(prior, str) and prior in adata.varp:
        p = adata.varp[prior]
        p = np.asarray(p.toarray() if hasattr(p, "toarray") else p, dtype=np.float64)
        field = f"adata.varp[{prior!r}]"
    else:
        from biostruct.datasets import read_prior

        p = read_prior(prior, list(adata.var_names), missing=missing)  # type: ignore[arg-type]
        field = "prior"
    if not np.isfinite(p).all():
        raise PriorError("the prior has NaN/inf entries", field=field, fix="replace them by 0")
    if not np.any(p != 0):
        raise PriorError(
            "the prior is all zero, so it carries no information",
            field=field,
            fix="check that its gene names match adata.var_names, or pass prior=None with "
            "method='dense' or 'imp'",
        )
    return p


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _is_cell_input(
    adata: Any,
    time_key: str | Sequence[str],
    trajectory_key: str | None,
    lineage_key: str | None,
    cells: bool | str,
) -> bool:
    """Whether observations are single cells with pseudotime (see ``GRNModel(cells=...)``)."""
    if cells is True or cells is False:
        return bool(cells)
    if cells != "auto":
        raise ConfigError("cells must be True, False or 'auto'", field="cells", fix="cells='auto'")
    if not isinstance(time_key, str) or lineage_key is not None:
        return True
    if time_key not in adata.obs:
        return False  # the time-series reader raises the missing-key error
    try:
        t = np.asarray(adata.obs[time_key], dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if np.isnan(t).any():
        return True
    if trajectory_key is not None and trajectory_key in adata.obs:
        groups = np.asarray(adata.obs[trajectory_key]).astype(str)
    else:
        groups = np.zeros(adata.n_obs, dtype=str)
    frame = pd.DataFrame({"g": groups, "t": t})
    # snapshots: many observations per series and tied times (a time series with the odd
    # replicate stays a time series; its replicates are averaged)
    per_series = adata.n_obs / max(frame["g"].nunique(), 1)
    return bool(per_series >= 30 and frame.duplicated().mean() > 0.01)


def _transitions(x0: np.ndarray, x1: np.ndarray, dt: np.ndarray) -> Transitions:
    return Transitions(
        torch.as_tensor(x0, dtype=torch.float32),
        torch.as_tensor(x1, dtype=torch.float32),
        torch.as_tensor(dt, dtype=torch.float32),
        np.zeros(len(dt), dtype=np.int64),
    )


def _scaled_view(adata: Any, xs: np.ndarray) -> Any:
    import anndata as ad

    out = ad.AnnData(xs.astype(np.float32))
    out.obs_names = list(adata.obs_names)
    out.var_names = list(adata.var_names)
    return out


class GRNModel:
    """A PHOENIX-style neural ODE of gene-expression dynamics, optionally pruned with DASH.

    Parameters
    ----------
    adata
        Observations x genes with ``obs[time_key]`` and ``obs[trajectory_key]``; ``None`` only
        for a model restored with :meth:`load` (results, no training).
    prior
        Prior network (see :func:`coerce_prior`).
    time_key, trajectory_key
        obs columns; ``trajectory_key=None`` treats all observations as one series.
    layer
        Expression layer (default ``X``).
    split_key
        obs column with ``"train"`` / ``"test"`` labels (used only when present): test
        observations are excluded from training and used for :meth:`test_mse`.
    hidden
        Hidden width of each branch.
    init
        ``"dash"`` or ``"phoenix"`` initialisation.
    val_fraction
        Share of training trajectories held out for validation (chosen by ``seed``); with fewer
        than three trajectories a share of transitions is held out instead.
    seed
        Seeds the initialisation, the split, and training.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``.
    ppi
        Optional protein-interaction matrix for DASH's input layers (default |P| |P|^T).
    prior_missing
        ``"raise"`` or ``"drop"`` for prior genes absent from the data.
    lineage_key
        Single-cell input: obs column naming each cell's lineage (categorical). Alternatively
        pass ``time_key`` as a list of pseudotime columns, one per lineage, NaN off-lineage.
    cells
        ``True``: observations are single cells ordered by pseudotime (see
        :mod:`biostruct.grn.pseudotime`); ``False``: time series; ``"auto"``: single cells when
        ``time_key`` is a list, ``lineage_key`` is given, the time has NaN, or there are >= 30
        observations per trajectory and more than 1 % of them share a time with another one.
    successors, successor_window
        Single-cell mode: successors averaged per cell and the candidate window (share of a
        lineage's cells), see :func:`biostruct.grn.pseudotime.successor_transitions`.
    """

    def __init__(
        self,
        adata: Any,
        prior: Any = None,
        *,
        time_key: str = "time",
        trajectory_key: str | None = "trajectory",
        layer: str | None = None,
        split_key: str | None = "split",
        hidden: int = 40,
        init: str = "dash",
        val_fraction: float = 0.066,
        seed: int = 0,
        device: str | torch.device = "auto",
        ppi: Any = None,
        prior_missing: str = "raise",
        lineage_key: str | None = None,
        cells: bool | str = "auto",
        successors: int = 10,
        successor_window: float = 0.05,
    ) -> None:
        self.device = resolve_device(device)
        self.seed = int(seed)
        self.params: dict[str, Any] = {
            "hidden": int(hidden),
            "init": init,
            "time_key": time_key if isinstance(time_key, str) else [str(k) for k in time_key],
            "trajectory_key": trajectory_key,
            "lineage_key": lineage_key,
            "layer": layer,
            "val_fraction": float(val_fraction),
            "val_fraction_cells": 0.15,
            "seed": self.seed,
        }
        self.trainer: Trainer | None = None
        self.history: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.method: str | None = None
        self.train_seconds = 0.0
        self.solver = SolverConfig()
        self.test: Trajectories | None = None
        self.cell_mode = False
        self.cell_states: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.velocity: Any = None
        self.evidence: np.ndarray | None = None
        self.posterior_info: dict[str, float] = {}
        self.warnings: list[str] = []
        if adata is None:
            self.var_names: list[str] = []
            self.prior = None
            self.data = None
            self.module = PhoenixField(1, hidden)
            return
        if hidden < 1:
            raise ConfigError("hidden must be >= 1", field="hidden", fix="e.g. hidden=40")
        self.var_names = [str(v) for v in adata.var_names]
        self.prior = coerce_prior(adata, prior, missing=prior_missing)
        self.ppi = None if ppi is None else coerce_prior(adata, ppi, missing=prior_missing)
        sub, test = adata, None
        if split_key is not None and split_key in adata.obs:
            labels = np.asarray(adata.obs[split_key]).astype(str)
            if np.any(labels == "test"):
                test = adata[labels == "test"]
                sub = adata[labels != "test"]
        if _is_cell_input(sub, time_key, trajectory_key, lineage_key, cells):
            self._setup_cells(
                sub, time_key, lineage_key or trajectory_key, layer, successors, successor_window
            )
            self.module = PhoenixField(len(self.var_names), hidden, init=init, seed=self.seed)
            return
        if not isinstance(time_key, str):
            raise ConfigError(
                "several time keys need single-cell mode",
                field="cells",
                fix="pass cells=True or 'auto' with one pseudotime column per lineage",
            )
        self.data = trajectories_from_anndata(
            sub, time_key=time_key, trajectory_key=trajectory_key, layer=layer
        )
        if test is not None:
            self.test = trajectories_from_anndata(
                test, time_key=time_key, trajectory_key=trajectory_key, layer=layer
            )
        self.module = PhoenixField(len(self.var_names), hidden, init=init, seed=self.seed)
        self._split()

    # ------------------------------------------------------------------ data
    def _setup_cells(
        self,
        adata: Any,
        time_key: str | Sequence[str],
        lineage_key: str | None,
        layer: str | None,
        successors: int,
        window: float,
    ) -> None:
        """Single cells: per-gene scaling, held-out cells, successor transitions, mean paths."""
        if lineage_key is not None and lineage_key not in adata.obs:
            lineage_key = None  # the default trajectory_key is absent: one lineage
        keys = [time_key] if isinstance(time_key, str) else list(time_key)
        lt = pt.lineage_times(adata, keys if len(keys) > 1 else keys[0], lineage_key)
        on = np.isfinite(lt.times).any(1)
        x = pt.expression(adata, layer)
        if x.min() < 0:
            raise InputError(
                "single-cell expression has negative values",
                field="adata.layers[" + repr(layer) + "]" if layer else "adata.X",
                fix="pass non-negative (log-normalised) expression, not z-scores",
            )
        peak = x[on].max(0)
        self.scale = np.where(peak > 0, peak, 1.0)
        xs = x / self.scale
        val = pt.cell_split(lt, self.params["val_fraction_cells"], self.seed)
        tr = pt.successor_transitions(xs, lt, cells=~val, k=successors, window=window)
        va = pt.successor_transitions(xs, lt, cells=val, k=successors, window=window)
        self._train_tr = _transitions(*tr[:3])
        self._val_tr = _transitions(*va[:3])
        self._all_transitions = tuple(np.concatenate([a, b]) for a, b in zip(tr[:3], va[:3]))
        self.cell_states = xs[on]
        self.cell_mode = True
        self.data = pt.bin_lineages(_scaled_view(adata, xs), lt)
        self.params.update(
            cells=True,
            lineages=list(lt.names),
            n_cells=int(on.sum()),
            n_transitions=len(self._all_transitions[0]),
            successors=int(successors),
            successor_window=float(window),
            validation="cells",
        )

    def _split(self) -> None:
        assert self.data is not None
        train_ids, val_ids, mode = split_validation(
            self.data, self.params["val_fraction"], self.seed
        )
        self.params["validation"] = mode
        self.params["val_trajectories"] = [self.data.names[i] for i in val_ids]
        train = self.data.subset(train_ids).transitions()
        val: Transitions | None = None
        if val_ids:
            val = self.data.subset(val_ids).transitions()
        elif mode == "transitions":
            rng = np.random.default_rng(self.seed)
            n = len(train)
            n_val = max(1, int(round(n * self.params["val_fraction"])))
            if n - n_val < 1:
                raise InputError(
                    "too few transitions to hold out a validation set",
                    field="adata",
                    fix="provide more time points or set val_fraction=0",
                )
            perm = rng.permutation(n)
            val = train.take(np.sort(perm[:n_val]))
            train = train.take(np.sort(perm[n_val:]))
        self._train_tr, self._val_tr = train, val

    # ------------------------------------------------------------------ training
    def train(
        self,
        method: str = "dash",
        *,
        epochs: int = 200,
        checkpoint: str | Path | None = None,
        resume: bool = True,
        checkpoint_every: int = 1,
        callback: Callable[[dict[str, Any]], None] | None = None,
        max_seconds: float | None = None,
        **train_kwargs: Any,
    ) -> GRNModel:
        """Fit the vector field with a named method (see :data:`biostruct.grn.methods.METHODS`).

        Parameters
        ----------
        method
            ``dash``, ``imp``, ``prior_only``, ``phoenix``, ``dense``, ``posthoc``, ``l1``, ``lrr``.
        epochs
            Maximum epochs.
        checkpoint
            File for resumable checkpoints; with ``resume=True`` an existing one is continued.
        train_kwargs
            Overrides of :class:`TrainConfig`, the pruning schedule, DASH lambdas and the solver
            (see :func:`biostruct.grn.methods.build_configs`), e.g. ``lr=3e-3``,
            ``batch_size=32``, ``solver="rk4"``, ``lam_ppi=0.1``.
        """
        if self.data is None:
            raise NotFittedError(
                "this model was loaded without data", field="adata", fix="build GRNModel(adata)"
            )
        if method not in METHODS:
            raise ConfigError(
                f"unknown method {method!r}", field="method", fix=f"use one of {', '.join(METHODS)}"
            )
        if method in NEEDS_PRIOR and self.prior is None:
            raise PriorError(
                f"method {method!r} needs a prior network",
                field="prior",
                fix="pass prior= (array, DataFrame or adata.varp key), or use method='imp'/'dense'",
            )
        velocity_opts = train_kwargs.pop("velocity", None) or {}
        if method == "velocity":
            if train_kwargs:
                raise ConfigError(
                    f"training option(s) {sorted(train_kwargs)} do not apply to 'velocity'",
                    field=sorted(train_kwargs)[0],
                    fix="pass velocity={...} (VelocityConfig fields) instead",
                )
            self._fit_velocity(velocity_opts, own_field=True)
            self.method = "velocity"
            self.params.update(method="velocity")
            return self
        base = "dash" if method == "posterior" else method
        if self.cell_mode:
            # thousands of cell transitions: 128 per step keeps an epoch at ~15 solves
            train_kwargs.setdefault("batch_size", 128)
        cfg, pruning = build_configs(base, epochs, **train_kwargs)
        self._fit(base, cfg, pruning, checkpoint, resume, checkpoint_every, callback, max_seconds)
        if method == "posterior":
            assert self.prior is not None
            from biostruct.grn.velocity import conditional_evidence

            self.evidence = conditional_evidence(*self._transition_arrays(), self.prior)
            self.method = "posterior"
            self.params.update(
                method="posterior",
                network_method="dash",
                evidence="conditional velocity (additive spline, leave-one-regulator-out)",
            )
        return self

    def _transition_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every observed transition (x0, x1, dt): cell successors, or time-series steps."""
        if self.cell_mode:
            return self._all_transitions  # type: ignore[return-value]
        assert self.data is not None
        tr = self.data.transitions()
        return tr.x0.numpy(), tr.x1.numpy(), tr.dt.numpy()

    def _fit_velocity(self, options: dict[str, Any], *, own_field: bool) -> None:
        """Bagged collocation ensemble on every transition (see :mod:`biostruct.grn.velocity`)."""
        from biostruct.grn.velocity import VelocityConfig, fit_velocity_ensemble

        try:
            vcfg = VelocityConfig(**options)
        except TypeError as exc:
            raise ConfigError(
                f"unknown velocity option ({exc})",
                field="velocity",
                fix="use fields of biostruct.grn.velocity.VelocityConfig",
            ) from None
        x0, x1, dt = self._transition_arrays()
        states = self.observed_states()
        if len(states) > 2000:  # the mean Jacobian converges long before every state is used
            states = states[np.random.default_rng(self.seed).choice(len(states), 2000, False)]
        t0 = time.perf_counter()
        ens = fit_velocity_ensemble(x0, x1, dt, states, vcfg, seed=self.seed, device=self.device)
        self.train_seconds += time.perf_counter() - t0
        self.velocity = ens
        if own_field and ens.fields:  # velocity alone: the first member is the model's field
            self.module = ens.fields[0]
            self.params["field_bound"] = vcfg.bound
            # velocities in pseudotime units make the field stiff (rates in the hundreds):
            # simulate it with error control, not a fixed step that could be unstable
            self.solver = SolverConfig(method="dopri5", rtol=1e-4, atol=1e-5)
        self.params.update(velocity=vcfg.to_dict(), velocity_best_step=list(ens.best_step))
        n_bad = sum(not ok for ok in ens.fitted)
        if n_bad:
            self.warnings.append(
                f"{n_bad} of {len(ens.fitted)} ensemble members did not predict held-out "
                "transitions better than no dynamics at all: the edge scores carry little signal"
            )

    def edge_scores(self) -> np.ndarray:
        """The matrix written to ``varp[key]`` (regulator rows, target columns).

        - ``velocity``: the ensemble's mean Jacobian (signed, |value| ranks the edges);
        - ``posterior``: the prior combined with the conditional velocity evidence
          (:func:`biostruct.grn.velocity.conditional_evidence`, then
          :func:`biostruct.grn.velocity.combine_with_prior`), signed, values in (-1, 1);
        - every other method: the PHOENIX effect matrix of the trained field.
        """
        self._check_fitted()
        if self.method == "velocity":
            return np.asarray(self.velocity.score)
        if self.method == "posterior":
            from biostruct.grn.velocity import combine_with_prior

            assert self.prior is not None
            score, info = combine_with_prior(self.evidence, self.prior)
            self.posterior_info = info
            return score
        return self.effect_matrix()

    def _fit(
        self,
        method: str,
        cfg: TrainConfig,
        pruning: PruningConfig | None,
        checkpoint: str | Path | None,
        resume: bool,
        checkpoint_every: int,
        callback: Callable[[dict[str, Any]], None] | None,
        max_seconds: float | None,
    ) -> None:
        # single cells are scaled to [0, 1]: a bounded level keeps the field from blowing up
        bound = 2.0 if self.cell_mode else None
        field = PhoenixField(
            len(self.var_names),
            self.params["hidden"],
            init=self.params["init"],
            seed=self.seed,
            bound=bound,
        )
        trainer = Trainer(
            field,
            self._train_tr,
            self._val_tr,
            cfg,
            prior=self.prior,
            pruning=pruning,
            seed=self.seed,
            device=self.device,
            ppi=self.ppi,
        )
        if checkpoint is not None and resume and Path(checkpoint).exists():
            trainer.load_checkpoint(checkpoint)
        self.trainer = trainer  # visible to callbacks during training
        t0 = time.perf_counter()
        trainer.fit(
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            callback=callback,
            max_seconds=max_seconds,
        )
        self.train_seconds = time.perf_counter() - t0
        self.params["field_bound"] = bound
        trainer.restore_best()
        self.trainer = trainer
        self.module = trainer.field
        self.method = method
        self.solver = cfg.solver
        self.history = trainer.history
        self.events = trainer.events
        self.params.update(
            method=method,
            epochs=cfg.epochs,
            epochs_run=trainer.epoch,
            best_epoch=trainer.best_epoch,
            stopped_early=trainer.stopped_early,
            train=cfg.to_dict(),
            pruning=pruning.to_dict() if pruning else None,
            device=str(self.device),
        )

    def _check_fitted(self) -> None:
        if self.method is None:
            raise NotFittedError("the model is not trained", field="model", fix="call .train()")

    # ------------------------------------------------------------------ results
    def effect_matrix(self) -> np.ndarray:
        """Signed PHOENIX effect matrix (regulator rows, target columns), G x G."""
        self._check_fitted()
        return extract.effect_matrix(self.module)

    def observed_states(self) -> np.ndarray:
        """Every observed state: the (scaled) cells in single-cell mode, else the time points."""
        if self.cell_states is not None:
            return self.cell_states
        if self.data is None:
            raise NotFittedError("no data attached", field="adata", fix="pass states explicitly")
        return np.concatenate(self.data.values)

    def jacobian_effect(self, states: np.ndarray | None = None) -> np.ndarray:
        """Mean Jacobian d f_j / d x_i over ``states`` (default: every observed state)."""
        self._check_fitted()
        return extract.jacobian_effect(
            self.module, self.observed_states() if states is None else states
        )

    def top_edges(
        self, n: int = 50, *, kind: str = "scores", matrix: np.ndarray | None = None
    ) -> pd.DataFrame:
        """The ``n`` strongest edges of ``matrix``, or of ``kind``: ``"scores"``
        (:meth:`edge_scores`), ``"effect"`` or ``"jacobian"``."""
        if matrix is None:
            getter = {
                "scores": self.edge_scores,
                "effect": self.effect_matrix,
                "jacobian": self.jacobian_effect,
            }[kind]
            matrix = getter()
        return extract.edge_table(matrix, self.var_names, top=n)

    def sparsity(self) -> dict[str, float]:
        """Fraction of zeros per layer and pooled (DASH definition)."""
        return extract.layer_sparsity(self.module)

    def evaluate(self, truth: np.ndarray, scores: np.ndarray | None = None) -> dict[str, Any]:
        """Edge metrics of :meth:`edge_scores` (or ``scores``) against a G x G ground truth,
        plus the sparsity of the trained field."""
        out = metrics.edge_metrics(self.edge_scores() if scores is None else scores, truth)
        out["sparsity"] = self.sparsity()["pooled"]
        return out

    def predict(self, x0: np.ndarray, times: Sequence[float]) -> np.ndarray:
        """Trajectories from initial states ``x0`` (B x G) at ``times``: (B, T, G)."""
        self._check_fitted()
        x0 = np.atleast_2d(np.asarray(x0, dtype=np.float64))
        if x0.shape[1] != self.module.n_genes or not np.isfinite(x0).all():
            raise InputError(
                f"x0 must be finite with {self.module.n_genes} columns",
                field="x0",
                fix="pass states in the model's gene order",
            )
        return perturb.simulate(self.module, x0, times, self.solver)

    def predict_trajectories(self, data: Trajectories) -> list[np.ndarray]:
        """Each trajectory simulated from its first observed state over its own times."""
        return [self.predict(v[0], t)[0] for t, v in zip(data.times, data.values)]

    def test_mse(self, data: Trajectories | None = None) -> float:
        """One-step MSE (from each observed state to the next) on held-out trajectories.

        Defaults to the ``split == "test"`` observations given at construction.
        """
        self._check_fitted()
        data = data if data is not None else self.test
        if data is None:
            return float("nan")
        from biostruct.grn.solve import one_step_mse

        return one_step_mse(self.module, data.transitions().to(self.device), self.solver)

    def _gene(self, gene: str | int) -> int:
        if isinstance(gene, int | np.integer):
            return int(gene)
        try:
            return self.var_names.index(str(gene))
        except ValueError:
            raise InputError(
                f"unknown gene {gene!r}", field="gene", fix="use a name from adata.var_names"
            ) from None

    def knockout(
        self,
        gene: str | int,
        *,
        value: float = 0.0,
        x0: np.ndarray | None = None,
        times: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Clamp ``gene`` to ``value`` (0 = knockout, e.g. 1 = overexpression) and report the
        change of every other gene at the last time point (mean over initial states).

        ``x0`` defaults to the first state of every trajectory, ``times`` to the longest
        observed time grid.
        """
        self._check_fitted()
        if self.data is None and (x0 is None or times is None):
            raise InputError("no data attached", field="x0", fix="pass x0 and times")
        if x0 is None:
            x0 = np.stack([v[0] for v in self.data.values])  # type: ignore[union-attr]
        if times is None:
            times = max(self.data.times, key=len)  # type: ignore[union-attr]
            times = np.asarray(times) - times[0]
        return perturb.perturbation_effect(
            self.module, x0, times, self._gene(gene), value, self.var_names, self.solver
        )

    def influence_scores(self, **kwargs: Any) -> pd.Series:
        """PHOENIX influence score of every gene (see :func:`perturb.influence_scores`)."""
        self._check_fitted()
        return perturb.influence_scores(self.module, self.var_names, solver=self.solver, **kwargs)

    # ------------------------------------------------------------------ io
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write ``model.pt`` and ``meta.json`` into directory ``path`` atomically."""
        self._check_fitted()
        path = Path(path)
        if path.exists() and not overwrite:
            raise InputError(f"{path} exists", field="path", fix="pass overwrite=True")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.tmp"))
        try:
            from biostruct.serialization import FORMAT_VERSION, save_torch, sha256_bytes
            from biostruct.sparsity import export_dense

            state = export_dense(self.module)
            meta = {
                "format_version": FORMAT_VERSION,
                "var_names": self.var_names,
                "params": _json_safe(self.params),
                "method": self.method,
                "solver": self.solver.to_dict(),
                "history": _json_safe(self.history),
                "events": _json_safe(self.events),
                "train_seconds": self.train_seconds,
                "warnings": list(getattr(self, "warnings", [])),
            }
            meta_bytes = json.dumps(meta).encode()
            (tmp / "meta.json").write_bytes(meta_bytes)
            payload: dict[str, Any] = {
                "field": {k: v.detach().cpu() for k, v in state.items() if not k.endswith("_mask")}
            }
            ens = getattr(self, "velocity", None)
            if ens is not None:  # velocity / posterior: the ensemble's scores are the result
                payload["velocity"] = {
                    "score": torch.as_tensor(np.asarray(ens.score)),
                    "stability": torch.as_tensor(np.asarray(ens.stability)),
                    "val_loss": [float(v) for v in ens.val_loss],
                    "zero_loss": [float(v) for v in ens.zero_loss],
                    "best_step": [int(v) for v in ens.best_step],
                }
            if self.method == "posterior" and self.prior is not None:  # combined with the scores
                payload["prior"] = torch.as_tensor(np.asarray(self.prior))
            if getattr(self, "evidence", None) is not None:  # posterior: the data's evidence
                payload["evidence"] = torch.as_tensor(np.asarray(self.evidence))
            save_torch(
                tmp / "model.pt",
                payload,
                kind="grn-model",
                fingerprint={"meta_sha256": sha256_bytes(meta_bytes)},
            )
            if path.exists():
                old = path.with_name(f".{path.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path, adata: Any = None, *, device: str = "auto") -> GRNModel:
        """Restore a model written by :meth:`save` (``adata`` optional, for data-based getters).

        The weights are read with :func:`biostruct.serialization.load_torch` (no code runs from
        the file; format version, sha256 and the match with ``meta.json`` are checked).

        Raises
        ------
        InputError
            ``path`` is not a saved model, or ``adata`` has other genes than the saved model.
        DataFormatError, ChecksumError
            An old layout, an unknown format version, a truncated or modified file.
        """
        from biostruct.errors import DataFormatError
        from biostruct.serialization import SUPPORTED_VERSIONS, load_torch, sha256_bytes

        path = Path(path)
        if not (path / "meta.json").is_file() or not (path / "model.pt").is_file():
            raise InputError(
                f"{path} is not a saved GRNModel", field="path", fix="pass a directory from .save()"
            )
        resave = "re-create it with GRNModel.save() of this biostruct version."
        meta_bytes = (path / "meta.json").read_bytes()
        try:
            meta = json.loads(meta_bytes)
            params = meta["params"]
            version = meta.get("format_version")
            names = [str(g) for g in meta["var_names"]]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DataFormatError(
                f"{path / 'meta.json'} is damaged or not a GRNModel's", field="path", fix=resave
            ) from None
        if version not in SUPPORTED_VERSIONS:
            raise DataFormatError(
                f"{path} has format_version {version!r} (an older layout or a newer biostruct); "
                f"this biostruct reads {sorted(SUPPORTED_VERSIONS)}",
                field="path",
                fix=resave,
            )
        state = load_torch(
            path / "model.pt",
            kind="grn-model",
            fingerprint={"meta_sha256": sha256_bytes(meta_bytes)},
            field="path",
        )
        if adata is not None and [str(g) for g in adata.var_names] != names:
            given = [str(g) for g in adata.var_names]
            extra = sorted(set(given) - set(names))[:5]
            missing = sorted(set(names) - set(given))[:5]
            detail = (
                f"not in the model: {extra}, missing: {missing}"
                if extra or missing
                else "same genes in another order"
            )
            raise InputError(
                f"the genes of adata differ from the saved model's {len(names)} genes ({detail})",
                field="adata.var_names",
                fix="pass the AnnData the model was trained on (same genes, same order), "
                "e.g. adata[:, model_genes].",
            )
        if adata is not None:
            obj = cls(
                adata,
                None,
                time_key=params["time_key"],
                trajectory_key=params["trajectory_key"],
                layer=params.get("layer"),
                hidden=params["hidden"],
                seed=params["seed"],
                device=device,
                lineage_key=params.get("lineage_key"),
                cells=bool(params.get("cells", False)),
            )
        else:
            obj = cls(None, hidden=params["hidden"], device=device)
            obj.var_names = list(meta["var_names"])
        if not isinstance(state, dict):
            raise DataFormatError(
                f"{path / 'model.pt'} does not hold a GRNModel's weights", field="path", fix=resave
            )
        weights = state.get("field")
        if not isinstance(weights, dict):  # files of this version written before the velocity
            weights = state  # methods held the field's weights alone
        try:
            hidden = int(weights["sums.weight"].shape[0])  # velocity members have their own
            field = PhoenixField(len(meta["var_names"]), hidden, bound=params.get("field_bound"))
            field.load_state_dict({k: v for k, v in weights.items() if not k.endswith("_mask")})
        except (RuntimeError, AttributeError, KeyError, TypeError, IndexError) as exc:
            raise DataFormatError(
                f"{path / 'model.pt'} does not fit the model in meta.json ({str(exc)[:200]})",
                field="path",
                fix=resave,
            ) from None
        obj.module = field.to(obj.device)
        obj.params.update(params)
        obj.method = meta["method"]
        obj.solver = SolverConfig(**meta["solver"])
        obj.history = meta["history"]
        obj.events = meta["events"]
        obj.train_seconds = meta["train_seconds"]
        obj.warnings = list(meta.get("warnings", []))
        if isinstance(state.get("velocity"), dict):
            from biostruct.grn.velocity import VelocityEnsemble

            v = state["velocity"]
            obj.velocity = VelocityEnsemble(
                score=v["score"].numpy(),
                stability=v["stability"].numpy(),
                fields=[],  # only the first member's field is kept (as the model's module)
                val_loss=list(v["val_loss"]),
                zero_loss=list(v["zero_loss"]),
                best_step=list(v["best_step"]),
            )
        if "prior" in state:
            obj.prior = state["prior"].numpy()
        if "evidence" in state:
            obj.evidence = state["evidence"].numpy()
        return obj
