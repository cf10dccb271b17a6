"""Importance scores for pruning: magnitude, random, external priors, and blends.

A scorer is any callable ``scorer(fqn, weight, mask, ctx) -> Tensor`` returning a tensor of the
weight's shape; larger means "keep". :func:`compute_scores` evaluates one under ``no_grad`` and
sets the scores of already-pruned entries to ``-inf`` so that they are never selected again.

Per-tensor transforms
---------------------
Weight-based scorers accept ``transform=``: either one callable ``weight -> tensor`` for every
tensor, or a mapping from fqn glob patterns to such callables (first match wins; unmatched
tensors are scored untransformed). DASH scores the products layer by ``exp(W)`` and the output
layers by ``|A| * relu(m)``::

    transform = {
        "prods.weight": torch.exp,
        "out_*.weight": lambda a: a * torch.relu(model.gene_mult)[:, None],
    }
    scorer = Blend([(Magnitude("sum", transform=transform), 0.95), (Prior(table), 0.05)])
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch

from biostruct.errors import InputError

__all__ = [
    "Scorer",
    "Magnitude",
    "Random",
    "Prior",
    "Blend",
    "compute_scores",
    "Transform",
]

Transform = (
    Callable[[torch.Tensor], torch.Tensor] | Mapping[str, Callable[[torch.Tensor], torch.Tensor]]
)


class Scorer(Protocol):
    """Protocol of a score function."""

    def __call__(
        self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, ctx: Any = None
    ) -> torch.Tensor: ...


def _apply_transform(transform: Transform | None, fqn: str, weight: torch.Tensor) -> torch.Tensor:
    if transform is None:
        return weight
    if callable(transform) and not isinstance(transform, Mapping):
        return transform(weight)
    for pattern, fn in transform.items():
        if fnmatch.fnmatchcase(fqn, pattern):
            return fn(weight)
    return weight


def _normalise(score: torch.Tensor, mask: torch.Tensor, how: str | None, fqn: str) -> torch.Tensor:
    if how is None:
        return score
    kept = score[mask]
    if how == "sum":
        denom = kept.sum()
    elif how == "max":
        denom = kept.max() if kept.numel() else score.new_tensor(1.0)
    else:
        raise InputError(
            f"unknown normalisation {how!r}", field="normalize", fix='use None, "sum" or "max"'
        )
    if not torch.isfinite(denom) or float(denom) == 0.0:
        return torch.zeros_like(score)
    return score / denom


class Magnitude:
    """``|transform(W)|`` over kept entries, optionally normalised per tensor.

    Parameters
    ----------
    normalize
        ``None``, ``"sum"`` (divide by the sum over kept entries, as DASH does) or ``"max"``.
    transform
        Per-tensor transform of the weight before the absolute value (see the module docstring).
    """

    def __init__(self, normalize: str | None = None, transform: Transform | None = None) -> None:
        if normalize not in (None, "sum", "max"):
            raise InputError(
                f"unknown normalisation {normalize!r}",
                field="normalize",
                fix='use None, "sum" or "max"',
            )
        self.normalize = normalize
        self.transform = transform

    def __call__(
        self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, ctx: Any = None
    ) -> torch.Tensor:
        score = _apply_transform(self.transform, fqn, weight).abs() * mask
        return _normalise(score, mask, self.normalize, fqn)


class Random:
    """Uniform random scores in [0, 1), drawn from ``generator`` (or a fresh one from ``seed``)."""

    def __init__(self, generator: torch.Generator | None = None, seed: int | None = None) -> None:
        if generator is None:
            generator = torch.Generator()
            generator.manual_seed(0 if seed is None else int(seed))
        self.generator = generator

    def __call__(
        self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, ctx: Any = None
    ) -> torch.Tensor:
        draw = torch.rand(weight.shape, generator=self.generator, device=self.generator.device)
        return draw.to(weight.device) * mask


class Prior:
    """Scores from an external table ``{fqn: tensor}`` (e.g. DASH's prior-derived matrices).

    Parameters
    ----------
    table
        One tensor (or array-like) per scored fqn, of the weight's shape.
    absolute
        Take ``|table|`` (signed priors score by strength).
    normalize
        As for :class:`Magnitude`.
    missing
        What to do for a tensor without an entry: ``"error"`` or ``"zero"``.
    """

    def __init__(
        self,
        table: Mapping[str, Any],
        absolute: bool = True,
        normalize: str | None = None,
        missing: str = "error",
    ) -> None:
        if missing not in ("error", "zero"):
            raise InputError(
                f"unknown value {missing!r}", field="missing", fix='use "error" or "zero"'
            )
        self.table = {k: torch.as_tensor(v, dtype=torch.float32) for k, v in table.items()}
        self.absolute = absolute
        self.normalize = normalize
        self.missing = missing

    def __call__(
        self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, ctx: Any = None
    ) -> torch.Tensor:
        if fqn not in self.table:
            if self.missing == "zero":
                return torch.zeros_like(weight, dtype=torch.float32)
            raise InputError(
                f"the prior table has no entry for {fqn!r}",
                field="table",
                fix=f"add a tensor of shape {tuple(weight.shape)} or pass missing='zero'",
            )
        t = self.table[fqn].to(weight.device)
        if tuple(t.shape) != tuple(weight.shape):
            raise InputError(
                f"prior for {fqn!r} has shape {tuple(t.shape)}, the weight {tuple(weight.shape)}",
                field="table",
                fix="orient the prior like the weight (transpose regulator x target if needed)",
            )
        score = (t.abs() if self.absolute else t) * mask
        return _normalise(score, mask, self.normalize, fqn)


class Blend:
    """Weighted sum ``sum_i c_i * scorer_i`` of scorers.

    Parameters
    ----------
    parts
        ``[(scorer, coefficient), ...]``.
    transform
        Applied to the weight before it is handed to the parts (parts may add their own).
    """

    def __init__(
        self, parts: Sequence[tuple[Scorer, float]], transform: Transform | None = None
    ) -> None:
        if not parts:
            raise InputError("no scorers to blend", field="parts", fix="pass [(scorer, w), ...]")
        self.parts = [(s, float(c)) for s, c in parts]
        self.transform = transform

    def __call__(
        self, fqn: str, weight: torch.Tensor, mask: torch.Tensor, ctx: Any = None
    ) -> torch.Tensor:
        w = _apply_transform(self.transform, fqn, weight)
        total = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        for scorer, coef in self.parts:
            total = total + coef * scorer(fqn, w, mask, ctx).to(torch.float32)
        return total


@torch.no_grad()
def compute_scores(
    scorer: Scorer,
    weights: Mapping[str, torch.Tensor] | Any,
    masks: Mapping[str, torch.Tensor] | None = None,
    ctx: Any = None,
) -> dict[str, torch.Tensor]:
    """Evaluate ``scorer`` on every tensor; pruned entries get ``-inf``.

    Parameters
    ----------
    scorer
        A :class:`Scorer`.
    weights
        ``{fqn: tensor}`` or a :class:`~biostruct.sparsity.MaskedParams` (then ``masks`` defaults
        to its masks).
    masks
        ``{fqn: bool mask}``; all ones when omitted.
    ctx
        Passed through to the scorer.

    Raises
    ------
    InputError
        A score is NaN or has the wrong shape.
    """
    if hasattr(weights, "weights") and hasattr(weights, "masks"):
        if masks is None:
            masks = weights.masks()
        weights = weights.weights()
    out: dict[str, torch.Tensor] = {}
    for fqn, w in weights.items():
        m = torch.ones_like(w, dtype=torch.bool) if masks is None else masks[fqn].to(torch.bool)
        s = scorer(fqn, (w * m).detach(), m, ctx)
        if tuple(s.shape) != tuple(w.shape):
            raise InputError(
                f"scorer returned shape {tuple(s.shape)} for {fqn!r} ({tuple(w.shape)})",
                field="scorer",
                fix="return a tensor of the weight's shape",
            )
        if torch.isnan(s[m]).any():
            raise InputError(
                f"NaN score for {fqn!r}",
                field="scorer",
                fix="check the transform and the prior table for NaN/inf",
            )
        out[fqn] = torch.where(m, s.float(), torch.full_like(s, -float("inf"), dtype=torch.float32))
    return out
