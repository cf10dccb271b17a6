"""Layer-wise density allocation and random (Erdos-Renyi) masks.

Methods (``N_l`` = entries of tensor ``l``, ``d`` = global density, ``L`` = number of tensors):

``uniform``
    Every tensor gets ``d``.
``erk``
    Density proportional to ``sum(shape) / prod(shape)`` (RigL's Erdos-Renyi-Kernel), scaled so
    that ``sum_l d_l N_l = d * sum_l N_l``. Densities above 1 are clipped; with
    ``redistribute=True`` (default) the clipped tensors are fixed dense and the scale is solved
    again for the others until nothing exceeds 1, so the total is met exactly. The lab code does
    not redistribute (``redistribute=False`` reproduces that: the realised total falls short).
``balanced``
    Every tensor keeps the same number ``d * sum N / L`` of entries; a tensor too small for that
    is kept dense and its excess is spread over the others.
``pyramidal``
    Tensor ``l`` (1-based, in the given order) gets ``r ** l`` where ``r`` in (0, 1] solves
    ``sum_l N_l r**l = d * sum_l N_l``.

The densities are real numbers; :func:`random_masks` turns them into counts
(``round(d_l * N_l)`` with ``exact=True``), so report :func:`realised_density` next to the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from biostruct.errors import InputError

__all__ = ["layerwise_densities", "random_masks", "realised_density", "realised_densities"]

_METHODS = ("uniform", "erk", "balanced", "pyramidal")


def _numels(shapes: Mapping[str, torch.Size | tuple[int, ...]]) -> dict[str, int]:
    if not shapes:
        raise InputError("no tensors given", field="shapes", fix="pass MaskedParams.shapes()")
    return {k: int(math.prod(tuple(s))) for k, s in shapes.items()}


def _fill_with_cap(
    weights: dict[str, float], numel: dict[str, int], budget: float
) -> dict[str, float]:
    """Densities ``c * weights[l]`` capped at 1 with ``sum d_l N_l = budget`` (redistributing)."""
    dense: set[str] = set()
    while True:
        free = [k for k in weights if k not in dense]
        left = budget - sum(numel[k] for k in dense)
        denom = sum(weights[k] * numel[k] for k in free)
        if not free or denom <= 0:
            return {k: 1.0 if k in dense else 0.0 for k in weights}
        c = left / denom
        over = [k for k in free if c * weights[k] > 1.0]
        if not over:
            return {k: 1.0 if k in dense else c * weights[k] for k in weights}
        dense.update(over)


def layerwise_densities(
    shapes: Mapping[str, torch.Size | tuple[int, ...]],
    density: float,
    method: str = "uniform",
    redistribute: bool = True,
) -> dict[str, float]:
    """Per-tensor densities whose entry-weighted mean is ``density``.

    Parameters
    ----------
    shapes
        ``{fqn: shape}``, in layer order (``pyramidal`` depends on it).
    density
        Global target in (0, 1].
    method
        ``"uniform"``, ``"erk"``, ``"balanced"`` or ``"pyramidal"`` (see the module docstring).
    redistribute
        ERK only: spread the density that clipping at 1 removes over the other tensors.
    """
    if not (0.0 < float(density) <= 1.0):
        raise InputError(f"{density!r} is not in (0, 1]", field="density", fix="e.g. 0.1")
    if method not in _METHODS:
        raise InputError(f"unknown method {method!r}", field="method", fix=f"one of {_METHODS}")
    numel = _numels(shapes)
    total = sum(numel.values())
    budget = density * total
    if method == "uniform":
        return {k: float(density) for k in numel}
    if method == "erk":
        raw = {k: sum(tuple(s)) / numel[k] for k, s in shapes.items()}
        if redistribute:
            return _fill_with_cap(raw, numel, budget)
        c = budget / sum(raw[k] * numel[k] for k in numel)
        return {k: min(1.0, c * raw[k]) for k in numel}
    if method == "balanced":
        # Equal counts: density_l = count / N_l, i.e. weights 1/N_l under the common scale.
        return _fill_with_cap({k: 1.0 / numel[k] for k in numel}, numel, budget)
    # pyramidal: f(r) = sum N_l r^l is increasing in r on (0, 1]; bisection.
    keys = list(numel)

    def kept(r: float) -> float:
        return sum(numel[k] * r ** (i + 1) for i, k in enumerate(keys))

    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if kept(mid) < budget:
            lo = mid
        else:
            hi = mid
    r = 0.5 * (lo + hi)
    return {k: r ** (i + 1) for i, k in enumerate(keys)}


def random_masks(
    shapes: Mapping[str, torch.Size | tuple[int, ...]],
    densities: Mapping[str, float] | float,
    *,
    exact: bool = True,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Random boolean masks with the given per-tensor densities.

    Parameters
    ----------
    shapes
        ``{fqn: shape}``.
    densities
        ``{fqn: density}`` or one density for all.
    exact
        ``True``: exactly ``round(d * N)`` entries per tensor, uniformly at random.
        ``False``: independent Bernoulli(d) entries (the lab code's choice; counts vary).
    generator, seed
        Randomness source; ``seed`` builds a CPU generator when ``generator`` is omitted.
    device
        Where the masks are created (CPU by default).
    """
    if generator is None:
        generator = torch.Generator()
        generator.manual_seed(0 if seed is None else int(seed))
    out: dict[str, torch.Tensor] = {}
    for fqn, shape in shapes.items():
        d = float(densities if isinstance(densities, int | float) else densities[fqn])
        if not 0.0 <= d <= 1.0:
            raise InputError(f"density {d} for {fqn!r}", field="densities", fix="use [0, 1]")
        n = int(math.prod(tuple(shape)))
        if exact:
            flat = torch.zeros(n, dtype=torch.bool)
            flat[torch.randperm(n, generator=generator)[: round(d * n)]] = True
        else:
            flat = torch.rand(n, generator=generator) < d
        out[fqn] = flat.reshape(tuple(shape)).to(device or "cpu")
    return out


def realised_densities(masks: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Fraction of ``True`` entries per mask."""
    return {k: float(m.to(torch.bool).float().mean()) for k, m in masks.items()}


def realised_density(masks: Mapping[str, torch.Tensor]) -> float:
    """Fraction of ``True`` entries over all masks."""
    kept = sum(int(m.to(torch.bool).sum()) for m in masks.values())
    return kept / sum(m.numel() for m in masks.values())
