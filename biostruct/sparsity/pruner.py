"""One pruning step: score the masked tensors, choose the new masks, set them."""

from __future__ import annotations

from typing import Any

import torch

from biostruct.sparsity.masking import MaskedParams
from biostruct.sparsity.scores import Scorer, compute_scores
from biostruct.sparsity.topk import topk_masks

__all__ = ["prune_step"]


def prune_step(
    masked: MaskedParams,
    scorer: Scorer,
    *,
    density: float | None = None,
    fraction_of_remaining: float | None = None,
    scope: str = "local",
    fqns: list[str] | None = None,
    ctx: Any = None,
) -> dict[str, torch.Tensor]:
    """Score, select (see :func:`topk_masks` for the amount semantics) and set the new masks.

    Parameters
    ----------
    masked
        The masks to update.
    scorer
        Score function, e.g. ``Magnitude()`` or a DASH ``Blend``.
    density, fraction_of_remaining, scope
        As in :func:`~biostruct.sparsity.topk_masks`.
    fqns
        Restrict the step to these tensors (default all masked tensors).
    ctx
        Passed to the scorer.

    Returns
    -------
    dict
        The new masks of the pruned tensors.
    """
    names = fqns or masked.fqns
    weights = {f: masked.weight(f) for f in names}
    masks = {f: masked.mask(f) for f in names}
    scores = compute_scores(scorer, weights, masks, ctx)
    new = topk_masks(
        scores, masks, density=density, fraction_of_remaining=fraction_of_remaining, scope=scope
    )
    masked.set_masks(new)
    return new
