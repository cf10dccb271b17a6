"""DASH pruning scores and schedule for the PHOENIX field.

Scores (per layer, computed under ``no_grad``; masks are then chosen by
:func:`biostruct.sparsity.topk_masks` layer-wise on the remaining weights):

- weight part, each normalised to sum 1 over the matrix:
  ``|W_s|``; ``exp(W_p)`` for the products layer (large negative exponents are pruned first);
  ``|A| * relu(m)`` (row j scaled by relu(m_j)) for both output layers;
- input layers (S = carried score of that layer, H x G): ``X = (S S^T)^-1 S PPI``, the
  least-squares solution of ``S^T X = PPI``; score = lam_ppi |X| + (1 - lam_ppi) weight part;
- output layers (S = the just-updated score of the matching input layer): ``C = (S T)^T (S S^T)^-1``
  with T = |prior|, the least-squares solution of ``C S = T^T``; score = lam_motif |C| +
  (1 - lam_motif) weight part;
- the new scores are carried to the next event (an alternating least-squares iteration seeded
  with U(0, 1) matrices).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from biostruct.errors import PriorError

__all__ = [
    "ppi_from_prior",
    "input_projection",
    "output_projection",
    "weight_part",
    "initial_scores",
    "dash_scores",
    "PruneSchedule",
    "MATCHING_INPUT",
    "DASH_ORDER",
]

#: which input layer's score feeds each output layer's prior projection
MATCHING_INPUT = {"alpha_sums.weight": "sums.weight", "alpha_prods.weight": "prods.weight"}
#: DASH's visiting order (the released code iterates prods, sums, combine_sums, combine_prods)
DASH_ORDER = ("prods.weight", "sums.weight", "alpha_sums.weight", "alpha_prods.weight")


def ppi_from_prior(prior: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Co-regulation matrix |P| |P|^T normalised to sum 1 (DASH's PPI for simulated data)."""
    p = torch.as_tensor(np.asarray(prior), dtype=torch.float64).abs()
    ppi = p @ p.T
    total = ppi.sum()
    if total <= 0:
        raise PriorError(
            "the prior has no edges, so it carries no information for DASH",
            field="prior",
            fix="pass a prior with non-zero entries, or use method='imp'",
        )
    return ppi / total


def normalise_ppi(ppi: np.ndarray | torch.Tensor, *, symmetrise: bool = True) -> torch.Tensor:
    """A user-given PPI (G x G): absolute values, optionally symmetrised, normalised to sum 1."""
    m = torch.as_tensor(np.asarray(ppi), dtype=torch.float64).abs()
    if symmetrise:
        m = torch.maximum(m, m.T)
    total = m.sum()
    if total <= 0:
        raise PriorError("the PPI matrix is all zero", field="ppi", fix="pass a non-empty PPI")
    return m / total


def _gram_solve(s: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """(S S^T)^-1 rhs, falling back to the pseudo-inverse when S S^T is singular."""
    gram = s @ s.T
    try:
        return torch.linalg.solve(gram, rhs)
    except RuntimeError:
        return torch.linalg.pinv(gram) @ rhs


def input_projection(s: torch.Tensor, ppi: torch.Tensor) -> torch.Tensor:
    """X = (S S^T)^-1 S PPI for an input-layer score S (H x G); float64."""
    s = s.to(torch.float64)
    return _gram_solve(s, s @ ppi.to(torch.float64))


def output_projection(s: torch.Tensor, motif: torch.Tensor) -> torch.Tensor:
    """C = (S T)^T (S S^T)^-1 for the matching input score S (H x G) and T = |P|; G x H."""
    s = s.to(torch.float64)
    # (S S^T) is symmetric, so (S T)^T (S S^T)^-1 = ((S S^T)^-1 S T)^T
    return _gram_solve(s, s @ motif.to(torch.float64)).T


def weight_part(fqn: str, weight: torch.Tensor, rates: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised weight score of one layer (see module docstring); float64, sums to 1."""
    w = weight.detach().to(torch.float64)
    if fqn == "prods.weight":
        part = torch.exp(w)
    elif fqn == "sums.weight":
        part = w.abs()
    elif fqn in MATCHING_INPUT:
        if rates is None:
            raise ValueError("output layers need the gene rates")
        part = w.abs() * torch.relu(rates.detach().to(torch.float64)).reshape(-1, 1)
    else:
        raise KeyError(fqn)
    total = part.sum()
    return part / total if total > 0 else part


def initial_scores(
    shapes: Mapping[str, tuple[int, ...]], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """The random U(0, 1) seed scores of the ALS iteration (float64, CPU)."""
    return {
        k: torch.rand(tuple(v), generator=generator, dtype=torch.float64) for k, v in shapes.items()
    }


def dash_scores(
    weights: Mapping[str, torch.Tensor],
    rates: torch.Tensor,
    carried: Mapping[str, torch.Tensor],
    *,
    ppi: torch.Tensor | None,
    motif: torch.Tensor | None,
    lam_ppi: float,
    lam_motif: float,
) -> dict[str, torch.Tensor]:
    """New DASH scores of the four layers (also the next carried scores); float64, CPU.

    ``lam_ppi = lam_motif = 0`` gives plain magnitude scores (IMP); 1 gives prior-only scores.
    """
    out: dict[str, torch.Tensor] = {}
    for fqn in DASH_ORDER:
        w = weights[fqn].detach().cpu()
        if fqn in MATCHING_INPUT:
            lam = lam_motif
            wp = weight_part(fqn, w, rates.detach().cpu())
            if lam > 0:
                if motif is None:
                    raise PriorError("DASH needs a prior", field="prior", fix="pass prior=")
                prior_part = output_projection(out[MATCHING_INPUT[fqn]], motif).abs()
            else:
                prior_part = torch.zeros_like(wp)
        else:
            lam = lam_ppi
            wp = weight_part(fqn, w)
            if lam > 0:
                if ppi is None:
                    raise PriorError("DASH needs a prior", field="prior", fix="pass prior=")
                prior_part = input_projection(carried[fqn], ppi).abs()
            else:
                prior_part = torch.zeros_like(wp)
        out[fqn] = lam * prior_part + (1.0 - lam) * wp
    return out


@dataclass
class PruneSchedule:
    """When and how much to prune: a first cut, then periodic cuts of the remaining weights.

    A cut happens at the end of epoch ``start_epoch`` (1-based) removing ``first_fraction`` of
    each layer's remaining weights, then at the end of every epoch that is a multiple of
    ``every`` (after the start) removing ``fraction`` of the remaining weights, never at the
    last epoch (so the last mask is fine-tuned), and not after ``stop_epoch`` if given.
    The DASH simulated-data schedule is the default: 3 / 70 % / 10 % every 10 epochs.
    """

    start_epoch: int = 3
    first_fraction: float = 0.7
    every: int = 10
    fraction: float = 0.1
    stop_epoch: int | None = None

    def fraction_at(self, epoch: int, total_epochs: int) -> float | None:
        """Fraction of remaining weights to cut at the end of ``epoch``, or ``None``."""
        if epoch >= total_epochs or (self.stop_epoch is not None and epoch > self.stop_epoch):
            return None
        if epoch == self.start_epoch:
            return self.first_fraction if self.first_fraction > 0 else None
        if epoch > self.start_epoch and self.every > 0 and epoch % self.every == 0:
            return self.fraction if self.fraction > 0 else None
        return None

    def cuts(self, total_epochs: int) -> list[tuple[int, float]]:
        """Every (epoch, fraction) of a run of ``total_epochs``."""
        return [
            (e, f)
            for e in range(1, total_epochs + 1)
            if (f := self.fraction_at(e, total_epochs)) is not None
        ]

    def densities(self, total_epochs: int) -> list[tuple[int, float]]:
        """Expected per-layer density after each cut (up to rounding)."""
        d = 1.0
        out = []
        for e, f in self.cuts(total_epochs):
            d *= 1.0 - f
            out.append((e, d))
        return out

    def last_cut(self, total_epochs: int) -> int:
        cuts = self.cuts(total_epochs)
        return cuts[-1][0] if cuts else 0

    def to_dict(self) -> dict:
        return asdict(self)
