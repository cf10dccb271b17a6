"""Per-tensor sparsity reports.

Masked entries (``kept`` counts the mask) and exact zeros among the *kept* entries are counted
separately: continuous methods (PILoT, m*w with weight decay) produce near-zero or zero weights
long before any mask is set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "LayerSparsity",
    "sparsity_report",
    "global_density",
    "report_table",
    "nnz_fraction_below",
]


@dataclass(frozen=True)
class LayerSparsity:
    """Sparsity of one tensor.

    Attributes
    ----------
    fqn
        Tensor name.
    numel
        Number of entries.
    kept
        Entries the mask keeps (``numel`` when unmasked).
    density
        ``kept / numel``.
    exact_zeros
        Kept entries whose value is exactly 0.
    nonzero
        Entries whose value is not 0 (``kept - exact_zeros``).
    sign_flips
        Sign changes since a :class:`~biostruct.sparsity.SignTracker` snapshot, or ``None``.
    """

    fqn: str
    numel: int
    kept: int
    density: float
    exact_zeros: int
    nonzero: int
    sign_flips: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-friendly)."""
        return asdict(self)


def _weights_and_masks(obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor | None]]:
    if hasattr(obj, "weights") and hasattr(obj, "masks"):
        return obj.weights(), dict(obj.masks())
    if isinstance(obj, nn.Module):
        from biostruct.sparsity.masking import MaskedParams, _registry  # local: avoid a cycle

        weights: dict[str, torch.Tensor] = {}
        masks: dict[str, torch.Tensor | None] = {}
        masked = []
        for mod_name, module in obj.named_modules():
            for name in _registry(module):
                masked.append(f"{mod_name}.{name}" if mod_name else name)
        if masked:
            return _weights_and_masks(MaskedParams(obj, masked))
        for fqn, p in obj.named_parameters():
            if p.ndim >= 2:
                weights[fqn] = p.detach()
                masks[fqn] = None
        return weights, masks
    if isinstance(obj, Mapping):
        return {k: v.detach() for k, v in obj.items()}, {k: None for k in obj}
    raise TypeError(f"cannot report on {type(obj).__name__}")


@torch.no_grad()
def sparsity_report(obj: Any, sign_flips: Mapping[str, int] | None = None) -> list[LayerSparsity]:
    """Per-tensor report.

    Parameters
    ----------
    obj
        A :class:`~biostruct.sparsity.MaskedParams`, a model (its masked tensors, or every
        parameter with ``ndim >= 2`` when nothing is masked) or ``{fqn: tensor}``.
    sign_flips
        Optional ``{fqn: count}``, e.g. ``SignTracker.flips(since="init")``.
    """
    weights, masks = _weights_and_masks(obj)
    rows = []
    for fqn, w in weights.items():
        m = masks.get(fqn)
        numel = w.numel()
        if m is None:
            kept = numel
            zeros = int((w == 0).sum())
        else:
            kept = int(m.sum())
            zeros = int(((w == 0) & m).sum())
        rows.append(
            LayerSparsity(
                fqn=fqn,
                numel=numel,
                kept=kept,
                density=kept / numel if numel else 0.0,
                exact_zeros=zeros,
                nonzero=int((w != 0).sum()),
                sign_flips=None if sign_flips is None else int(sign_flips.get(fqn, 0)),
            )
        )
    return rows


def global_density(report: Sequence[LayerSparsity]) -> float:
    """Kept entries over all entries of the report."""
    total = sum(r.numel for r in report)
    return sum(r.kept for r in report) / total if total else 0.0


def report_table(report: Sequence[LayerSparsity]) -> str:
    """Fixed-width text table for logs (one row per tensor plus a total)."""
    header = f"{'tensor':<40} {'numel':>9} {'kept':>9} {'density':>8} {'zeros':>7} {'flips':>7}"
    lines = [header, "-" * len(header)]
    for r in report:
        flips = "-" if r.sign_flips is None else str(r.sign_flips)
        lines.append(
            f"{r.fqn[:40]:<40} {r.numel:>9} {r.kept:>9} {r.density:>8.4f} "
            f"{r.exact_zeros:>7} {flips:>7}"
        )
    total_numel = sum(r.numel for r in report)
    total_kept = sum(r.kept for r in report)
    zeros = sum(r.exact_zeros for r in report)
    flips_all = [r.sign_flips for r in report if r.sign_flips is not None]
    flips = str(sum(flips_all)) if flips_all else "-"
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<40} {total_numel:>9} {total_kept:>9} {global_density(report):>8.4f} "
        f"{zeros:>7} {flips:>7}"
    )
    return "\n".join(lines)


@torch.no_grad()
def nnz_fraction_below(obj: Any, threshold: float) -> dict[str, float]:
    """Per tensor, the fraction of kept entries with ``|w| <= threshold``.

    For continuous sparsification (PILoT), where weights approach but do not reach zero.
    """
    weights, masks = _weights_and_masks(obj)
    out = {}
    for fqn, w in weights.items():
        m = masks.get(fqn)
        m = torch.ones_like(w, dtype=torch.bool) if m is None else m
        n = int(m.sum())
        out[fqn] = float(((w.abs() <= threshold) & m).sum()) / n if n else 0.0
    return out
