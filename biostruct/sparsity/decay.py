"""Weight-decay schedules (Mirror-Mirror switch-off, PILoT) and the PILoT controller.

Units
-----
Everything here is in **torch units**: ``weight_decay = lam`` adds ``lam * p`` to the gradient,
i.e. it is the gradient of ``(lam / 2) * ||p||**2``. The papers write the regulariser as
``alpha * ||p||**2``, so ``lam = 2 * alpha`` (factor 2). :class:`PilotController` works with the
paper's ``alpha`` and writes ``2 * alpha``.

For ``theta = m * w`` with decay ``lam`` on ``m`` and ``w``, gradient flow gives
``d(m**2 - w**2)/dt = -2 lam (m**2 - w**2)``, so the scale decays as
``a_t = a_0 exp(-2 * int lam dt) = a_0 exp(-4 * int alpha dt)``; the papers' ``exp(-2 int alpha)``
uses a different time normalisation. One SGD step of size ``lr`` multiplies the scale by
``(1 - lr * lam)**2 - (lr * g)**2`` exactly, where ``g`` is the gradient with respect to theta:
:attr:`WeightDecaySchedule.predicted_scale_factor` is the loss-free part ``prod (1 - lr lam)**2``,
and :attr:`WeightDecaySchedule.integral` is ``sum lr_t * lam_t`` (the discrete ``int lam dt``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from biostruct.errors import InputError

__all__ = [
    "WeightDecaySchedule",
    "PilotController",
    "switch_off",
    "constant",
    "harmonic",
    "geometric",
]


def constant(value: float) -> Callable[[int], float]:
    """``lam_t = value``."""
    return lambda t: float(value)


def switch_off(value: float, at: int) -> Callable[[int], float]:
    """``lam_t = value`` for ``t < at``, then 0 (Mirror, Mirror of the Flow)."""
    return lambda t: float(value) if t < at else 0.0


def harmonic(value: float) -> Callable[[int], float]:
    """``lam_t = value / (t + 1)``."""
    return lambda t: float(value) / (t + 1)


def geometric(value: float, p: float) -> Callable[[int], float]:
    """``lam_t = value * p**t`` (``0 < p < 1`` gives a finite total decay)."""
    if not 0.0 < p <= 1.0:
        raise InputError(f"p={p}", field="p", fix="use 0 < p <= 1 (e.g. 0.95)")
    return lambda t: float(value) * p**t


class WeightDecaySchedule:
    """Write ``group["weight_decay"] = fn(t)`` into chosen parameter groups at every :meth:`step`.

    Call :meth:`step` once per optimizer step *before* ``optimizer.step()`` (the first call
    sets the value for step 0). Tracks the cumulative decay.

    Parameters
    ----------
    optimizer
        Any torch optimizer with a ``weight_decay`` entry in its groups.
    fn
        ``t -> lam_t`` in torch units (see the module docstring), e.g. :func:`switch_off`.
    groups
        Indices of the groups to drive (default all).

    Attributes
    ----------
    t
        Number of :meth:`step` calls so far.
    cumulative
        ``sum_t lam_t``.
    integral
        ``sum_t lr_t * lam_t``, the discrete ``int lam dt`` of gradient-flow time.
    predicted_scale_factor
        ``prod_t (1 - lr_t lam_t)**2``: how much weight decay alone shrinks ``m**2 - w**2``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        fn: Callable[[int], float],
        groups: Sequence[int] | None = None,
    ) -> None:
        self.optimizer = optimizer
        self.fn = fn
        n = len(optimizer.param_groups)
        self.groups = list(range(n)) if groups is None else list(groups)
        for g in self.groups:
            if not 0 <= g < n:
                raise InputError(f"no group {g}", field="groups", fix=f"use indices < {n}")
            if "weight_decay" not in optimizer.param_groups[g]:
                raise InputError(
                    f"group {g} has no weight_decay", field="optimizer", fix="use SGD/Adam/AdamW"
                )
        self.t = 0
        self.cumulative = 0.0
        self.integral = 0.0
        self._log_factor = 0.0

    @property
    def predicted_scale_factor(self) -> float:
        return math.exp(self._log_factor)

    @property
    def value(self) -> float:
        """The decay currently written into the groups."""
        return float(self.optimizer.param_groups[self.groups[0]]["weight_decay"])

    def step(self) -> float:
        """Set the groups' decay for the coming optimizer step and return it."""
        lam = float(self.fn(self.t))
        if lam < 0 or not math.isfinite(lam):
            raise InputError(f"weight decay {lam} at step {self.t}", field="fn", fix="use >= 0")
        for g in self.groups:
            group = self.optimizer.param_groups[g]
            group["weight_decay"] = lam
        lr = float(self.optimizer.param_groups[self.groups[0]]["lr"])
        self.cumulative += lam
        self.integral += lr * lam
        shrink = 1.0 - lr * lam
        self._log_factor += 2.0 * math.log(abs(shrink)) if shrink != 0 else -math.inf
        self.t += 1
        return lam

    def state_dict(self) -> dict[str, Any]:
        """Counters (``fn`` itself is code and is not saved)."""
        return {
            "t": self.t,
            "cumulative": self.cumulative,
            "integral": self.integral,
            "log_factor": self._log_factor,
            "groups": self.groups,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.t = int(state["t"])
        self.cumulative = float(state["cumulative"])
        self.integral = float(state["integral"])
        self._log_factor = float(state["log_factor"])
        self.groups = list(state["groups"])


class PilotController:
    """PILoT's once-per-epoch rule for the regularisation strength ``alpha`` (Algorithm 1).

    At the end of epoch ``k`` (1-based): if training is healthy (the training accuracy did not
    drop below the previous epoch's, up to ``tolerance``), ``||m * w||_1 >= l1_budget`` and
    ``k <= total_epochs / 2``, then ``alpha *= delta``; otherwise ``alpha /= delta``. The schedule
    then applies ``weight_decay = 2 * alpha`` (torch units) from the next step on.

    Parameters
    ----------
    schedule
        The :class:`WeightDecaySchedule` to drive (its ``fn`` is replaced).
    delta
        Factor > 1.
    l1_budget
        ``K``: grow the decay only while the L1 norm of the weights is at least this.
    total_epochs
        ``T``.
    alpha_init
        Initial ``alpha`` (paper units).
    tolerance
        Accuracy drop still counted as healthy.
    """

    def __init__(
        self,
        schedule: WeightDecaySchedule,
        delta: float,
        l1_budget: float,
        total_epochs: int,
        alpha_init: float = 1e-4,
        tolerance: float = 0.0,
    ) -> None:
        if delta <= 1.0:
            raise InputError(f"delta={delta}", field="delta", fix="use delta > 1 (e.g. 1.1)")
        if total_epochs < 1:
            raise InputError(f"{total_epochs}", field="total_epochs", fix="use >= 1")
        if alpha_init < 0:
            raise InputError(f"{alpha_init}", field="alpha_init", fix="use >= 0")
        self.schedule = schedule
        self.delta = float(delta)
        self.l1_budget = float(l1_budget)
        self.total_epochs = int(total_epochs)
        self.alpha = float(alpha_init)
        self.tolerance = float(tolerance)
        self.epoch = 0
        self.prev_acc: float | None = None
        self.history: list[dict[str, float]] = []
        schedule.fn = lambda t: 2.0 * self.alpha

    def epoch_end(self, train_acc: float, l1_norm: float) -> float:
        """Apply the rule after an epoch; returns the new ``alpha``."""
        self.epoch += 1
        healthy = self.prev_acc is None or train_acc >= self.prev_acc - self.tolerance
        grow = healthy and l1_norm >= self.l1_budget and self.epoch <= self.total_epochs / 2
        self.alpha = self.alpha * self.delta if grow else self.alpha / self.delta
        self.prev_acc = float(train_acc)
        self.history.append(
            {"epoch": self.epoch, "alpha": self.alpha, "l1": float(l1_norm), "grew": float(grow)}
        )
        return self.alpha

    def state_dict(self) -> dict[str, Any]:
        """Controller state."""
        return {
            "alpha": self.alpha,
            "epoch": self.epoch,
            "prev_acc": self.prev_acc,
            "history": list(self.history),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.alpha = float(state["alpha"])
        self.epoch = int(state["epoch"])
        self.prev_acc = state["prev_acc"]
        self.history = list(state["history"])
