"""Cyclic sparse training (SCULPT): cycle lengths, a per-cycle triangular LR shape, the recipe.

SCULPT: start from a sparse mask at a low sparsity, train several cycles (each cycle restarts the
optimizer and its learning-rate schedule), prune once by magnitude to the final density, and
train one more cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from biostruct.errors import InputError
from biostruct.sparsity.allocation import layerwise_densities, random_masks
from biostruct.sparsity.masking import MaskedParams
from biostruct.sparsity.pruner import prune_step
from biostruct.sparsity.scores import Magnitude, Scorer

__all__ = ["cycle_lengths", "triangular", "TriangularShape", "sculpt", "STRATEGIES"]

STRATEGIES = (
    "constant",
    "linear_increase",
    "linear_decrease",
    "exponential_increase",
    "exponential_decrease",
    "cyclic_peak",
    "alternating",
    "plateau",
)


def _weights(n: int, strategy: str) -> list[float]:
    i = list(range(n))
    if strategy == "constant":
        return [1.0] * n
    if strategy == "linear_increase":
        return [k + 1.0 for k in i]
    if strategy == "linear_decrease":
        return [n - k + 0.0 for k in i]
    if strategy == "exponential_increase":
        return [2.0**k for k in i]
    if strategy == "exponential_decrease":
        return [2.0 ** (n - 1 - k) for k in i]
    if strategy == "cyclic_peak":  # longest in the middle
        return [min(k + 1, n - k) + 0.0 for k in i]
    if strategy == "alternating":  # long, short, long, ...
        return [2.0 if k % 2 == 0 else 1.0 for k in i]
    if strategy == "plateau":  # ramp over the first half, then flat
        half = max(1, n // 2)
        return [min(k + 1, half) + 0.0 for k in i]
    raise InputError(f"unknown strategy {strategy!r}", field="strategy", fix=f"one of {STRATEGIES}")


def cycle_lengths(total_epochs: int, n_cycles: int, strategy: str = "constant") -> list[int]:
    """Split ``total_epochs`` into ``n_cycles`` integer cycle lengths (each >= 1).

    Lengths are proportional to the strategy's weights, rounded by the largest-remainder method
    so that they add up to ``total_epochs`` exactly.
    """
    if n_cycles < 1 or total_epochs < n_cycles:
        raise InputError(
            f"cannot split {total_epochs} epochs into {n_cycles} cycles",
            field="n_cycles",
            fix="use 1 <= n_cycles <= total_epochs",
        )
    w = _weights(n_cycles, strategy)
    spare = total_epochs - n_cycles  # one epoch per cycle is guaranteed
    raw = [spare * x / sum(w) for x in w]
    base = [int(r) for r in raw]
    left = spare - sum(base)
    order = sorted(range(n_cycles), key=lambda k: (-(raw[k] - base[k]), k))
    for k in order[:left]:
        base[k] += 1
    return [b + 1 for b in base]


class TriangularShape:
    """Per-cycle LR factor: linear from ``start`` to 1 over ``warmup_frac`` of the cycle, then
    linear down to 0 at the cycle's end."""

    def __init__(self, warmup_frac: float = 0.2, start: float = 0.2) -> None:
        if not 0.0 <= warmup_frac < 1.0:
            raise InputError(f"{warmup_frac}", field="warmup_frac", fix="use [0, 1)")
        self.warmup_frac = float(warmup_frac)
        self.start = float(start)

    def __call__(self, step: int, total_steps: int) -> float:
        if total_steps <= 0:
            raise InputError(f"{total_steps}", field="total_steps", fix="use >= 1")
        peak = self.warmup_frac * total_steps
        if step < peak:
            return self.start + (1.0 - self.start) * step / peak
        if total_steps <= peak:
            return 1.0
        return max(0.0, 1.0 - (step - peak) / (total_steps - peak))

    def lambda_for(self, total_steps: int) -> Callable[[int], float]:
        """One-argument function for ``torch.optim.lr_scheduler.LambdaLR`` over one cycle."""
        return lambda step: self(step, total_steps)


def triangular(warmup_frac: float = 0.2, start: float = 0.2) -> TriangularShape:
    """The per-cycle triangular learning-rate shape (see :class:`TriangularShape`)."""
    return TriangularShape(warmup_frac, start)


def sculpt(
    masked: MaskedParams,
    init_density: float,
    final_density: float,
    n_cycles: int,
    train_cycle_fn: Callable[[int], Any],
    scorer: Scorer | None = None,
    *,
    init_masks: dict[str, torch.Tensor] | None = None,
    allocation: str = "uniform",
    scope: str = "global",
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Run the SCULPT recipe with the caller's training.

    Steps: set a random mask at ``init_density`` (``allocation`` over tensors, or ``init_masks``),
    call ``train_cycle_fn(c)`` for ``c = 0 .. n_cycles - 1``, prune once with ``scorer``
    (default magnitude) to ``final_density`` (``scope``), then ``train_cycle_fn(n_cycles)``.

    ``train_cycle_fn`` must build a fresh optimizer and LR schedule (e.g. with
    :func:`triangular`) and call ``masked.sync_optimizer(opt)``; its return value is recorded.

    Returns
    -------
    list of dict
        One entry per cycle: ``cycle``, ``density`` and ``result``.
    """
    if not 0.0 < final_density <= init_density <= 1.0:
        raise InputError(
            f"need 0 < final_density ({final_density}) <= init_density ({init_density}) <= 1",
            field="final_density",
            fix="e.g. init_density=0.8, final_density=0.1",
        )
    if init_masks is None:
        shapes = masked.shapes()
        dens = layerwise_densities(shapes, init_density, allocation)
        device = next(iter(masked.masks().values())).device
        init_masks = random_masks(shapes, dens, seed=seed, device=device)
    masked.set_masks(init_masks)
    history = []
    for c in range(n_cycles):
        result = train_cycle_fn(c)
        history.append({"cycle": c, "density": masked.density(), "result": result})
    prune_step(masked, scorer or Magnitude(), density=final_density, scope=scope)
    result = train_cycle_fn(n_cycles)
    history.append({"cycle": n_cycles, "density": masked.density(), "result": result})
    return history
