"""Batched integration of the vector field with torchdiffeq.

Every observed transition x(t_k) -> x(t_k+1) is rescaled to s in [0, 1] with dx/ds = dt_k f(x),
so a batch of transitions with different intervals shares one time grid and is integrated in one
solve. Solvers are picked by name (any torchdiffeq method, e.g. ``dopri5``, ``rk4``, ``euler``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from biostruct.errors import ConfigError, SolverError

if TYPE_CHECKING:  # pragma: no cover
    from biostruct.grn.data import Transitions

__all__ = [
    "SolverConfig",
    "integrate_transitions",
    "integrate_grid",
    "one_step_mse",
    "ADAPTIVE",
    "FIXED",
]

ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
FIXED = ("euler", "midpoint", "rk4", "explicit_adams", "implicit_adams", "heun3")

_FIX = (
    "lower the learning rate, loosen rtol/atol, or switch to a fixed-step solver "
    "(solver='rk4', step_size=0.25)"
)


@dataclass
class SolverConfig:
    """ODE solver settings.

    Attributes
    ----------
    method
        torchdiffeq method name. Default ``rk4`` with 4 steps per observed interval: 16 function
        evaluations per solve, against ~26 for ``dopri5`` at rtol 1e-3 / atol 1e-4 and ~120 at
        PHOENIX's rtol 1e-7 / atol 1e-9 (measured on SIM350 batches), without error control
        overhead. The one-step error is far below the data noise of the benchmarks (checked
        against a tight dopri5 solve in the tests); use ``dopri5`` for stiff or fast dynamics.
    rtol, atol
        Tolerances of adaptive methods (default 1e-3 / 1e-4).
    step_size
        Step of fixed-step methods on the rescaled [0, 1] interval (0.25 = 4 steps per interval).
    adjoint
        Backpropagate with the adjoint method (constant memory, slower).
    max_steps
        Cap on adaptive steps per solve (guards against stiff blow-ups).
    """

    method: str = "rk4"
    rtol: float = 1e-3
    atol: float = 1e-4
    step_size: float = 0.25
    adjoint: bool = False
    max_steps: int = 2000

    def validate(self) -> SolverConfig:
        if self.method not in ADAPTIVE + FIXED:
            raise ConfigError(
                f"unknown solver {self.method!r}",
                field="solver",
                fix=f"use one of {', '.join(ADAPTIVE + FIXED)}",
            )
        if self.method in FIXED and not (0 < self.step_size <= 1):
            raise ConfigError("step_size must be in (0, 1]", field="step_size", fix="e.g. 0.25")
        if self.rtol <= 0 or self.atol <= 0:
            raise ConfigError("rtol and atol must be positive", field="rtol", fix="e.g. 1e-3/1e-4")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def options(self) -> dict[str, Any]:
        if self.method in FIXED:
            return {"step_size": self.step_size}
        return {"max_num_steps": self.max_steps}


class _Scaled(nn.Module):
    """dx/ds = dt * f(x) for a batch with per-row interval dt."""

    def __init__(self, field: nn.Module, dt: torch.Tensor) -> None:
        super().__init__()
        self.field = field
        self.dt = dt

    def forward(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.dt * self.field(x)


class _Plain(nn.Module):
    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.field(x)


def _odeint(func: nn.Module, x0: torch.Tensor, t: torch.Tensor, cfg: SolverConfig) -> torch.Tensor:
    import torchdiffeq

    kwargs: dict[str, Any] = {"method": cfg.method, "options": cfg.options()}
    if cfg.method in ADAPTIVE:
        kwargs.update(rtol=cfg.rtol, atol=cfg.atol)
    try:
        if cfg.adjoint:
            params = tuple(p for p in func.parameters() if p.requires_grad)
            out = torchdiffeq.odeint_adjoint(func, x0, t, adjoint_params=params, **kwargs)
        else:
            out = torchdiffeq.odeint(func, x0, t, **kwargs)
    except AssertionError as exc:  # torchdiffeq signals underflow / too many steps this way
        raise SolverError(f"{cfg.method} failed: {exc}", field="solver", fix=_FIX) from exc
    except RuntimeError as exc:
        msg = str(exc)
        if "underflow" in msg or "max_num_steps" in msg or "step" in msg:
            raise SolverError(f"{cfg.method} failed: {msg}", field="solver", fix=_FIX) from exc
        raise
    if not torch.isfinite(out).all():
        raise SolverError(f"{cfg.method} produced non-finite states", field="solver", fix=_FIX)
    return out


def integrate_transitions(
    field: nn.Module, x0: torch.Tensor, dt: torch.Tensor, cfg: SolverConfig
) -> torch.Tensor:
    """Integrate every row of ``x0`` over its own interval ``dt`` (shape (B,)); returns x(t + dt)."""
    func = _Scaled(field, dt.reshape(-1, 1).to(x0))
    grid = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
    return _odeint(func, x0, grid, cfg)[-1]


@torch.no_grad()
def one_step_mse(field: nn.Module, data: Transitions, cfg: SolverConfig, chunk: int = 512) -> float:
    """MSE of one-step predictions x(t_k) -> x(t_k+1) from the observed start states.

    ``data`` must be on the field's device; transitions are integrated ``chunk`` at a time.
    """
    total, count = 0.0, 0
    for start in range(0, len(data), chunk):
        b = data.take(np.arange(start, min(start + chunk, len(data))))
        pred = integrate_transitions(field, b.x0, b.dt, cfg)
        total += float(((pred - b.x1) ** 2).sum())
        count += b.x1.numel()
    return total / max(count, 1)


def integrate_grid(
    field: nn.Module, x0: torch.Tensor, times: torch.Tensor, cfg: SolverConfig
) -> torch.Tensor:
    """Integrate a batch of initial states over a shared time grid; returns (T, B, G).

    Fixed-step methods use ``step_size`` in units of time here (not of the rescaled interval).
    """
    t = times.to(x0)
    return _odeint(_Plain(field), x0, t, cfg)
