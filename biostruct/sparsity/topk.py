"""Pure functions from scores to masks.

Two ways to say "how much", and they differ:

``density``
    The target fraction of *all* entries that stay (per tensor for ``scope="local"``, over all
    tensors for ``scope="global"``): ``keep = round(density * numel)``.
``fraction_of_remaining``
    The fraction of the *currently kept* entries to remove, the semantics of
    ``torch.nn.utils.prune`` and of IMP's "prune 20 % per round":
    ``remove = round(fraction * kept)``. Pruning 0.7 and then 0.1 of the remaining weights removes
    ``0.7 + 0.1 * 0.3 = 0.73`` of all weights, not 0.8.

``round`` is Python's (ties to even), which is what ``torch.nn.utils.prune`` uses, so the counts
match it exactly. Ties between equal scores are broken by position: among equal scores the entry
with the lower flat index (in the order of the ``scores`` mapping for global scope) is kept.
Already-pruned entries are never selected, so masks can only shrink.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from biostruct.errors import InputError

__all__ = ["topk_masks", "keep_counts", "density_after"]


def _check_amount(density: float | None, fraction: float | None) -> None:
    if (density is None) == (fraction is None):
        raise InputError(
            "give exactly one of density and fraction_of_remaining",
            field="density",
            fix="density=0.3 keeps 30 % of all entries; fraction_of_remaining=0.2 removes 20 % "
            "of those still kept",
        )
    value, field = (density, "density") if density is not None else (fraction, "fraction")
    if not (isinstance(value, int | float) and 0.0 <= float(value) <= 1.0 and math.isfinite(value)):
        raise InputError(f"{value!r} is not in [0, 1]", field=field, fix="pass a number in [0, 1]")


def keep_counts(
    numel: int,
    kept: int,
    *,
    density: float | None = None,
    fraction_of_remaining: float | None = None,
) -> int:
    """Number of entries to keep out of ``numel`` when ``kept`` are currently kept.

    Raises
    ------
    InputError
        ``density`` asks for more entries than are still kept (masks never grow here).
    """
    _check_amount(density, fraction_of_remaining)
    if density is not None:
        k = round(density * numel)
        if k > kept:
            raise InputError(
                f"density {density} needs {k} entries but only {kept} of {numel} are kept",
                field="density",
                fix="pruning cannot regrow weights; pass a density <= the current one",
            )
        return k
    return kept - round(fraction_of_remaining * kept)


def density_after(start: float, fractions: list[float]) -> float:
    """Density after removing each fraction of the remaining weights in turn.

    ``density_after(1.0, [0.7, 0.1]) == 0.27`` (i.e. 73 % pruned).
    """
    d = float(start)
    for f in fractions:
        d *= 1.0 - f
    return d


def _select(flat_scores: torch.Tensor, k: int) -> torch.Tensor:
    """Bool vector keeping the ``k`` highest scores; ties go to the lower index."""
    keep = torch.zeros(flat_scores.numel(), dtype=torch.bool, device=flat_scores.device)
    if k > 0:
        # Stable descending sort keeps equal scores in index order.
        order = torch.sort(flat_scores, descending=True, stable=True).indices
        keep[order[:k]] = True
    return keep


@torch.no_grad()
def topk_masks(
    scores: Mapping[str, torch.Tensor],
    masks: Mapping[str, torch.Tensor] | None = None,
    *,
    density: float | None = None,
    fraction_of_remaining: float | None = None,
    scope: str = "local",
) -> dict[str, torch.Tensor]:
    """Masks keeping the highest-scoring currently-kept entries.

    Parameters
    ----------
    scores
        ``{fqn: scores}``; larger is kept. Entries at ``-inf`` or outside ``masks`` are pruned.
    masks
        Current ``{fqn: bool mask}``; all ones when omitted.
    density, fraction_of_remaining
        Exactly one; see the module docstring.
    scope
        ``"local"``: every tensor separately; ``"global"``: one ranking over all tensors.

    Returns
    -------
    dict
        New boolean masks ``{fqn: mask}`` (inputs are not modified).
    """
    _check_amount(density, fraction_of_remaining)
    if scope not in ("local", "global"):
        raise InputError(f"unknown scope {scope!r}", field="scope", fix='use "local" or "global"')
    cur: dict[str, torch.Tensor] = {}
    for fqn, s in scores.items():
        if masks is not None and fqn in masks:
            m = masks[fqn].to(device=s.device, dtype=torch.bool)
            if m.shape != s.shape:
                raise InputError(
                    f"mask {tuple(m.shape)} and scores {tuple(s.shape)} differ for {fqn!r}",
                    field="masks",
                    fix="pass masks and scores for the same tensors",
                )
        else:
            m = torch.ones_like(s, dtype=torch.bool)
        if torch.isnan(s).any():
            raise InputError(f"NaN score for {fqn!r}", field="scores", fix="remove NaN scores")
        cur[fqn] = m & (s > -float("inf"))
    # Pruned entries must rank below every kept one, whatever their stored score.
    ranked = {
        f: torch.where(cur[f], s.float(), torch.full_like(s, -float("inf"), dtype=torch.float32))
        for f, s in scores.items()
    }
    out: dict[str, torch.Tensor] = {}
    if scope == "local":
        for fqn, s in ranked.items():
            kept = int(cur[fqn].sum())
            k = keep_counts(
                s.numel(), kept, density=density, fraction_of_remaining=fraction_of_remaining
            )
            out[fqn] = _select(s.reshape(-1), k).reshape(s.shape)
        return out
    flat = torch.cat([s.reshape(-1) for s in ranked.values()]) if ranked else torch.zeros(0)
    kept = int(sum(int(m.sum()) for m in cur.values()))
    k = keep_counts(
        flat.numel(), kept, density=density, fraction_of_remaining=fraction_of_remaining
    )
    keep = _select(flat, k)
    start = 0
    for fqn, s in ranked.items():
        out[fqn] = keep[start : start + s.numel()].reshape(s.shape)
        start += s.numel()
    return out
