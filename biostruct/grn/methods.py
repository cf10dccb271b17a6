"""Named training recipes: DASH and its baselines share one code path (the Trainer)."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from biostruct.errors import ConfigError
from biostruct.grn.dash import PruneSchedule
from biostruct.grn.solve import SolverConfig
from biostruct.grn.train import PruningConfig, TrainConfig

__all__ = ["METHODS", "NEEDS_PRIOR", "build_configs"]

#: method -> short description
METHODS = {
    "posterior": "the prior combined with conditional velocity evidence (posterior log-odds; "
    "the default with a prior), plus DASH's pruned network in varp[key + '_dash']",
    "velocity": "bagged PHOENIX fields fitted to observed velocities (collocation); edges = mean "
    "Jacobian over the observed states (the default without a prior)",
    "dash": "DASH: prior-informed iterative pruning (lam_ppi 0.05, lam_motif 0.01), no prior loss",
    "imp": "iterative magnitude pruning: the DASH loop with lambda = 0",
    "prior_only": "the DASH loop with lambda = 1 (scores from the prior only)",
    "phoenix": "dense PHOENIX with the soft prior loss (lambda_data 0.99)",
    "dense": "dense PHOENIX without prior loss",
    "posthoc": "dense training, one magnitude cut to 5 % density at mid-training, fine-tuning",
    "l1": "dense with an L1 path penalty (C-NODE style, weight 1e-3)",
    "lrr": "learning-rate rewinding: global magnitude cuts of 15 % every 10 epochs, LR restart",
    "pilot": "PILoT: m*w weights with decoupled decay 0.1 for half the epochs, then one "
    "magnitude cut to 5 % density at 3/4 of the epochs and fine-tuning",
}
NEEDS_PRIOR = {"dash", "prior_only", "phoenix", "posterior"}

_SCHEDULE_KEYS = {f.name for f in fields(PruneSchedule)}
_SOLVER_ALIASES = {
    "solver": "method",
    "rtol": "rtol",
    "atol": "atol",
    "step_size": "step_size",
    "adjoint": "adjoint",
    "max_steps": "max_steps",
}
_PRUNING_KEYS = {"lam_ppi", "lam_motif", "reset_lr", "scores"}


def _base(method: str, epochs: int) -> tuple[TrainConfig, PruningConfig | None]:
    train = TrainConfig(epochs=epochs)
    if method == "dash":
        return train, PruningConfig(scores="dash", lam_ppi=0.05, lam_motif=0.01)
    if method == "imp":
        return train, PruningConfig(scores="dash", lam_ppi=0.0, lam_motif=0.0)
    if method == "prior_only":
        return train, PruningConfig(scores="dash", lam_ppi=1.0, lam_motif=1.0)
    if method == "phoenix":
        return replace(train, lambda_data=0.99), None
    if method == "dense":
        return train, None
    if method == "posthoc":
        cut = max(1, epochs // 2)
        sched = PruneSchedule(start_epoch=cut, first_fraction=0.95, every=0, fraction=0.0)
        return train, PruningConfig(scores="magnitude", schedule=sched)
    if method == "l1":
        return replace(train, l1_path=1e-3), None
    if method == "lrr":
        sched = PruneSchedule(start_epoch=10, first_fraction=0.15, every=10, fraction=0.15)
        return train, PruningConfig(scores="lrr", schedule=sched)
    if method == "pilot":
        cut = max(1, (3 * epochs) // 4)
        sched = PruneSchedule(start_epoch=cut, first_fraction=0.95, every=0, fraction=0.0)
        pilot = replace(train, pilot_decay=0.1, pilot_off_epoch=max(1, epochs // 2))
        return pilot, PruningConfig(scores="magnitude", schedule=sched)
    raise ConfigError(
        f"unknown method {method!r}", field="method", fix=f"use one of {', '.join(METHODS)}"
    )


def build_configs(
    method: str, epochs: int, **kwargs: Any
) -> tuple[TrainConfig, PruningConfig | None]:
    """Configs of a named method, with keyword overrides.

    Keywords may be any :class:`TrainConfig` field, any :class:`PruneSchedule` field
    (``start_epoch``, ``first_fraction``, ``every``, ``fraction``, ``stop_epoch``), ``lam_ppi``,
    ``lam_motif``, ``reset_lr``, or solver settings (``solver`` = method name, ``rtol``, ``atol``,
    ``step_size``, ``adjoint``, ``max_steps``).
    """
    train, pruning = _base(method, epochs)
    train_keys = {f.name for f in fields(TrainConfig)} - {"solver", "epochs"}
    t_over = {k: v for k, v in kwargs.items() if k in train_keys}
    s_over = {_SOLVER_ALIASES[k]: v for k, v in kwargs.items() if k in _SOLVER_ALIASES}
    sch_over = {k: v for k, v in kwargs.items() if k in _SCHEDULE_KEYS}
    p_over = {k: v for k, v in kwargs.items() if k in _PRUNING_KEYS}
    unknown = set(kwargs) - set(t_over) - set(_SOLVER_ALIASES) - _SCHEDULE_KEYS - _PRUNING_KEYS
    if unknown:
        raise ConfigError(
            f"unknown training option(s) {sorted(unknown)}",
            field=sorted(unknown)[0],
            fix="see biostruct.grn.methods.build_configs for the accepted keywords",
        )
    solver = replace(SolverConfig(), **s_over)
    train = replace(train, solver=solver, **t_over)
    if (sch_over or p_over) and pruning is None:
        raise ConfigError(
            f"pruning options {sorted(sch_over | p_over)} given to dense method {method!r}",
            field=sorted(sch_over | p_over)[0],
            fix="use a pruning method (dash, imp, prior_only, posthoc, lrr)",
        )
    if pruning is not None:
        pruning = replace(pruning, schedule=replace(pruning.schedule, **sch_over), **p_over)
    return train.validate(), pruning
